"""The child side of `meshcore.config.isolated`: reads a pickled request on stdin, loads the
bootstrap and writes the pickled config, problems or OSError on stdout."""

from __future__ import annotations

import pickle
import sys
from typing import Any

from . import load_file, load_text
from .errors import ConfigError


def main() -> int:
    request = pickle.loads(sys.stdin.buffer.read())
    result: tuple[str, Any]
    try:
        if request[0] == "file":
            result = ("config", load_file(request[1]))
        else:
            result = ("config", load_text(request[1], fmt=request[2]))
    except ConfigError as exc:
        result = ("problems", exc.problems)
    except OSError as exc:
        result = ("oserror", (exc.errno, exc.strerror, exc.filename))
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main())
