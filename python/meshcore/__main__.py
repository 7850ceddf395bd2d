"""`python -m meshcore`: the same as the `meshcore` command."""

from meshcore.cli import main

raise SystemExit(main())
