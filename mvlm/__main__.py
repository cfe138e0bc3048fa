from mvlm.cli import main

raise SystemExit(main())
