from kt_trio.cli import main

raise SystemExit(main())
