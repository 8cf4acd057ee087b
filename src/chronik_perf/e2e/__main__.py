import sys

from .cli import main

if __name__ == "__main__":  # worker processes are spawned and re-import this module under another name
    sys.exit(main())
