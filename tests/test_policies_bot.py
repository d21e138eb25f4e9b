"""bot-detector: user agent, cadence, repetition and session bursts."""

from __future__ import annotations

from kt_trio.config.schema import BotDetectorSettings
from kt_trio.policies.bot import BotDetector


def test_human_session_is_not_flagged():
    s = BotDetector().new_session(user_agent="Mozilla/5.0 (X11)", key="k")
    t = 0.0
    for i, gap in enumerate([2.1, 5.3, 1.2, 8.0, 3.3, 4.4, 0.9, 6.1, 2.7, 3.9]):
        t += gap
        assert s.observe(t, f"message {i}") is None


def test_scripted_agent_with_machine_cadence_is_flagged_once():
    det = BotDetector()
    s = det.new_session(user_agent="python-requests/2.31", key="k1")
    findings = []
    for i in range(12):
        f = s.observe(i * 1.0, f"message {i}")
        if f is not None and s.new:
            findings.append(f)
    assert len(findings) == 1
    assert "inhuman_cadence" in findings[0].reason and "scripted_user_agent" in findings[0].reason
    assert findings[0].score is not None and findings[0].score >= det.threshold


def test_repeated_messages_and_missing_user_agent():
    s = BotDetector().new_session(user_agent=None, key="k2")
    t = 0.0
    f = None
    for gap in (3.0, 7.0, 2.0):
        t += gap
        f = s.observe(t, "buy now")
    assert f is not None and "repeated_messages" in f.reason and "no_user_agent" in f.reason


def test_burst_of_sessions_from_one_key():
    det = BotDetector(BotDetectorSettings(burst_sessions=3, burst_window_secs=10, threshold=0.5))
    flagged = []
    for i in range(5):
        s = det.new_session(user_agent="Mozilla/5.0", key="same-key")
        f = s.observe(100.0 + i * 0.5, "hello")
        flagged.append(f is not None and "session_burst" in f.reason)
    assert flagged == [False, False, False, True, True]
    # another key, and the same key after the window, are unaffected
    assert det.new_session(user_agent="Mozilla/5.0", key="other").observe(101.0, "x") is None
    assert det.new_session(user_agent="Mozilla/5.0", key="same-key").observe(200.0, "x") is None


def test_audio_like_regular_cadence_alone_stays_under_default_threshold():
    s = BotDetector().new_session(user_agent="Mozilla/5.0", key="k3")
    assert all(s.observe(i * 0.02, None) is None for i in range(50))


def test_defaults():
    d = BotDetector()
    assert (
        d.settings.action == "flag"
        and d.settings.directions == {"input"}
        and d.threshold == BotDetectorSettings().threshold == 0.8
    )
