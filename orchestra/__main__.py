from orchestra.cli import main

raise SystemExit(main())
