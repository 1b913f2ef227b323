import sys

from eval.dialogues.cli import main

sys.exit(main())
