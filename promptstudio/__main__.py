"""`python -m promptstudio` is the `promptstudio` command."""

import sys

from promptstudio.launch import main

sys.exit(main())
