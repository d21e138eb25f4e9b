"""Streaming support for `pii-detector`: where a text's tail could still begin a match.

The streaming redactor (`kt_trio.policies.streaming`) holds back the tail of what has arrived
that more text could turn into a match, and releases the rest. `TailRules` says where that tail
begins, for the kinds a detector has enabled: `tail_start` for any text, `plain_tail_start` as a
shortcut for plain text (most streamed deltas); `PiiDetector` has them as its methods. The
rules sit beside the tables they read (`pii_candidates`, `pii_names`) so that how far each
pattern reaches stays in one place.
"""

from __future__ import annotations

import re

from kt_trio.policies.pii_candidates import MAX_MATCH
from kt_trio.policies.pii_names import CUE, CUES, TITLE, TITLES, trie_regex
from kt_trio.policies.pii_national_id import MAX_ID_CHARS

# Characters an e-mail address, an IPv6 address, or the word being typed can be made of. The
# trailing run of these is held (it may yet become `bob@example.com`, or a cue word).
_RUN_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-@:'’"
    "ÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿ"
)


# The tail rules read the text *backwards*: each regex below is matched, anchored, against the
# reversed last `_TAIL_WINDOW` characters, so its cost is the length of the tail it recognises,
# not of the text (a forward `search` for "a match that reaches the end" tries every position).
# Greedy quantifiers make each match the longest, i.e. the earliest start in the forward text.
# Every name-related match fits in the window: cue <= 16 + 3 spaces + 3 words of <= 45 + 2.
_TAIL_WINDOW = 160
_NAME_TAIL_R = r"(?:(?:[\w'’-]{0,45}[ \t]{1,2}){0,2}[\w'’-]{0,45})?"
_CUES_R = [c[::-1] for c in CUES]
_CUE_PREFIXES_R = sorted({c[:k][::-1] for c in CUES for k in range(1, len(c) + 1)})
# Reversed: the character before the cue is not one of `pii_names._WORDISH` (what `scan_names` takes for a
# word character before a cue). Not `\w`: that also refuses non-ASCII letters, so 'écall me '
# was released although the whole-text scan takes 'call me' there for a cue.
_NOT_WORD_NEXT = r"(?![A-Za-z0-9_'’])"
_S = r"\s{1,3}"
# digits and their separators: phone, card, SSN, IPv4 (a start must be a digit, '+' or '(')
_TAIL_DIGITS = re.compile(r"[\d ().+/-]*[+(\d]")
_DIGIT_TAIL_LAST = " ().+/-"  # with the decimal digits: the characters that rule can start with
# an IBAN with its country code in place: 'GB82 WEST 12'
_TAIL_IBAN = re.compile(r" ?(?:[A-Z0-9] ?){0,32}\d{2}[A-Z]{2}")
# a complete cue, then whitespace and up to three (partial) words: 'my name is Jo'
_TAIL_CUE = re.compile(_NAME_TAIL_R + r"\s{1,3}(?i:" + trie_regex(_CUES_R, _S) + ")" + _NOT_WORD_NEXT)
# a cue still being written: 'my na', 'this '
_TAIL_CUE_PREFIX = re.compile(r"(?i:" + trie_regex(_CUE_PREFIXES_R, _S) + ")" + _NOT_WORD_NEXT)
# a title, then whitespace and up to three (partial) words: 'Dr. Jane D'
_TAIL_TITLE = re.compile(_NAME_TAIL_R + r"\s{0,3}\.?(?:" + trie_regex([t[::-1] for t in TITLES]) + ")" + _NOT_WORD_NEXT)
# Pre-checks for the last two: the last word of each cue (a cue is followed by whitespace, so it
# ends a token), and any title anywhere (case-sensitive, like the rule).
# A cue of several words has whitespace before its last word, which is then a whole token; a
# one-word cue may have a non-word character glued before it ('(named').
_CUE_LAST_TOKENS = frozenset(c.split(" ")[-1] for c in CUES if " " in c)
# A one-word cue at the end of a token (the tokens joined with, and followed by, a space).
_ONE_WORD_CUE_END = re.compile("(?:" + "|".join(re.escape(c) for c in CUES if " " not in c) + ") ")
# Words of a cue that another of its words follows ('my' in 'my name is').
_CUE_NONFINAL = tuple(sorted({w for c in CUES for w in c.split(" ")[:-1]}))
_NONFINAL_CHARS = max(map(len, _CUE_NONFINAL))
_ANY_TITLE = re.compile("|".join(TITLES))
# A title still being written ('D', 'Pro'): the trailing run holds it when that rule applies;
# with only names enabled, this does (without it 'Ask D' + 'r. Jane Doe' lost the name).
_TITLE_PREFIXES_R = sorted({t[:k][::-1] for t in TITLES for k in range(1, len(t) + 1)})
_TAIL_TITLE_PREFIX = re.compile("(?:" + trie_regex(_TITLE_PREFIXES_R) + ")" + _NOT_WORD_NEXT)

# Plain text: what most streamed deltas are (words, spaces, punctuation). In ASCII text with no
# digit, no '@' and at most one ':' only names can lie whole (e-mail needs '@'; phone, card, SSN,
# IPv4 and IBAN need digits; IPv6 needs two colons), and a name only after a cue or a title
# followed by whitespace and a capital; with no capital, or no such cue or title, none. A
# candidate can then only *begin* there, in four ways, which `plain_tail_start` holds back:
# - inside the trailing run of `_RUN_CHARS` (an e-mail's local part, IPv6 hex, an IBAN's letters);
# - at a final '+' or '(' (a phone's prefix; every other digit kind begins with a digit);
# - at a cue that is still being written, or is complete and followed by at most three
#   whitespace characters (the name, which must begin with a capital, is yet to come);
# - likewise at a title (only where there is a capital: a title begins with one).
_NOT_PLAIN = b"0123456789@"
_PLAIN_BYTES = bytes(i for i in range(128) if i not in _NOT_PLAIN and not 0x41 <= i <= 0x5A)  # A-Z: capitals
_PLAIN_RUN = "".join(c for c in _RUN_CHARS if c.isascii())
# Reversed: up to three whitespace characters, then the end of a prefix of a cue (a complete cue
# is its own longest prefix), and the character before it is not a word character
# (`scan_names`' test). Cue words are one space apart in `CUE`, so here too. Case-sensitive:
# it reads lower-cased text, as `scan_names` does.
_PLAIN_CUE_TAIL = re.compile(r"\s{0,3}(?:" + trie_regex(_CUE_PREFIXES_R) + ")" + _NOT_WORD_NEXT)
# The same for titles, which `TITLE` matches case-sensitively and may follow with a '.'.
_PLAIN_TITLE_TAIL = re.compile(r"\s{0,3}\.?(?:" + trie_regex(_TITLE_PREFIXES_R) + ")" + _NOT_WORD_NEXT)
# The longest cue (13) or title, three whitespace characters and a '.', and the character before.
_PLAIN_WINDOW = max(map(len, (*CUES, *TITLES))) + 3 + 1 + 1


# An identifier (`pii_national_id`) is upper-case letters and digits with single separators, at
# most MAX_ID_CHARS long: one that could still grow lies in the trailing run of these characters
# and starts at a letter or digit.
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-/"


def _id_tail(text: str) -> int:
    """How many trailing characters could still begin an identifier."""
    w = text[-MAX_ID_CHARS:]
    tail = w[len(w.rstrip(_ID_CHARS)) :]
    return len(tail.lstrip(" .-/"))


class TailRules:
    """The tail rules, as a base of `PiiDetector`: they read which kinds it enabled (set by its
    `__init__`). A base rather than a member so that the streaming redactor's per-delta calls
    cost no extra call."""

    _names: bool
    # The trailing run of address characters (e-mail, IPv6, and an IBAN's country code and check
    # digits before the IBAN rule can see them), and digit runs (card, SSN, IPv4, phone).
    _run_tail: bool
    _digit_tail: bool
    _iban: bool
    _ids: bool

    def plain_tail_start(self, text: str) -> int:
        """For plain text (see `_NOT_PLAIN`), where the tail that could still grow into a match
        begins, knowing that `scan(text)` finds nothing (no span, no candidate); -1 for any other
        text (`scan` and `tail_start` must then do it). `text` is not empty.

        Sound for the same reason as `tail_start`, with fewer rules because fewer candidates can
        begin in plain text. It holds less than `tail_start` after a complete cue ('this is the'
        goes out: a name would have begun with a capital). ~0.6 µs on a delta where `scan` and
        `tail_start` took ~4.
        """
        if not text.isascii():
            return -1
        b = text.encode("ascii")
        rest = b.translate(None, _PLAIN_BYTES)  # digits, '@' and capitals
        if rest and not rest.isalpha():
            return -1
        if 0x3A in b and b.count(b":") > 1:
            return -1
        names = self._names
        if rest and names and (CUE.search(text.lower()) is not None or TITLE.search(text) is not None):
            return -1  # a cue or title, and a capital somewhere: there may be a name
        n = len(text)
        h = n
        run = 0
        if self._run_tail:
            run = n - len(text.rstrip(_PLAIN_RUN))
            h = n - (run if run < MAX_MATCH else MAX_MATCH)
        if self._digit_tail and text[-1] in "+(" and h == n:
            h = n - 1
        if self._ids and text[-1] in _ID_CHARS:  # else no identifier can still grow (`_id_tail` 0)
            k = _id_tail(text)
            if n - k < h:
                h = n - k
        if names:
            # With a trailing run held (`run` > 0, so the text ends in no whitespace and the
            # rules' leading whitespace matches nothing), a title still being written lies inside
            # that run (it is run characters only) and a cue reaches before it only across one
            # of its spaces, after a cue word that another follows ('my na'; a cue's ',' ends
            # it): the rules are skipped where they cannot hold more than the run.
            j = n - run - 1
            cue = not run or (
                j >= 0 and text[j] == " " and text[max(0, j - _NONFINAL_CHARS) : j].lower().endswith(_CUE_NONFINAL)
            )
            tail = text[-_PLAIN_WINDOW:]
            if rest and not run:
                m = _PLAIN_TITLE_TAIL.match(tail[::-1])
                if m is not None and n - m.end() < h:
                    h = n - m.end()
            if cue:
                m = _PLAIN_CUE_TAIL.match((tail.lower() if rest else tail)[::-1])
                if m is not None and n - m.end() < h:
                    h = n - m.end()
        return h

    def tail_start(self, text: str) -> int:
        """Where the tail that could still grow into a match begins (len(text) if none).

        Conservative: it may hold more than needed, never less (tests/test_policies_streaming.py
        checks every split position of every kind against scanning the whole text). Only the
        rules of enabled kinds apply, and each rule runs only when a cheap, sound check says it
        can match (and, for the cue-prefix rule, match further back than the trailing run
        already held):

        - digits and IBAN: the last character must be one the rule's reversed pattern starts with;
        - cue prefix ('my na'): it ends in the trailing run unless the character before that run
          is a cue's ',' or ':' or whitespace after a cue word that is not a cue's last;
        - cue and title (the costly ones, ~1.3 µs each): a cue is followed by whitespace and at
          most three name words, so its last word is one of the last four whitespace-separated
          tokens (a one-word cue ends one of them); a title must occur in the tail at all;
        - title prefix ('Pro'): only without the trailing-run rule (which holds it otherwise), and
          only when the text ends in a letter.

        Non-ASCII tails skip the word checks (case-insensitive matching reaches beyond ASCII).
        """
        n = len(text)
        if not n:
            return 0
        window = text[-MAX_MATCH:]
        run = len(window) - len(window.rstrip(_RUN_CHARS))
        longest = run if self._run_tail else 0
        last = text[-1]
        rev = text[-_TAIL_WINDOW:][::-1]
        rules: list[re.Pattern[str]] = []
        if self._digit_tail and (last in _DIGIT_TAIL_LAST or last.isdecimal()):
            rules.append(_TAIL_DIGITS)
        if self._iban and (last == " " or "A" <= last <= "Z" or last.isdecimal()):
            rules.append(_TAIL_IBAN)
        if self._names:
            tail = text[-_TAIL_WINDOW:]
            if tail.isascii():
                toks = tail.lower().rsplit(None, 4)[-4:]
                j = n - run - 1  # the character before the trailing run
                if not self._run_tail or (
                    j >= 0
                    and (
                        text[j] in ",:"
                        or (
                            text[j].isspace()
                            and len(toks) >= (1 if run == 0 else 2)
                            and toks[-1 if run == 0 else -2].endswith(_CUE_NONFINAL)
                        )
                    )
                ):
                    rules.append(_TAIL_CUE_PREFIX)
                if not _CUE_LAST_TOKENS.isdisjoint(toks) or _ONE_WORD_CUE_END.search(" ".join(toks) + " "):
                    rules.append(_TAIL_CUE)
                if _ANY_TITLE.search(tail) is not None:
                    rules.append(_TAIL_TITLE)
            else:
                rules += (_TAIL_CUE_PREFIX, _TAIL_CUE, _TAIL_TITLE)
            if not self._run_tail and "A" <= last <= "z":
                rules.append(_TAIL_TITLE_PREFIX)
        for rx in rules:
            m = rx.match(rev)
            if m is not None and m.end() > longest:
                longest = m.end()
        if self._ids:
            k = _id_tail(text)
            if k > longest:
                longest = k
        return n - longest
