from orchestra.app.cli import main

raise SystemExit(main())
