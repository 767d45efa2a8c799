"""`python -m controller …` is the `modelrelease` command."""

from controller.cli.main import main

raise SystemExit(main())
