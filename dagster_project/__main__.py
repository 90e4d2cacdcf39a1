from dagster_project.cli import main

raise SystemExit(main())
