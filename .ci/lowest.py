"""Print pip constraints pinning each runtime dependency of pyproject.toml to its lower bound.

`make test-lowest` installs with them, so that every `>=` bound is a version the tests passed on.
"""

import re
import sys
import tomllib
from pathlib import Path

REQUIREMENT = re.compile(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*([^;]*)")


def lowest(requirements: list[str]) -> dict[str, str]:
    """Distribution name -> its `>=` bound, for each requirement that has one."""
    pins = {}
    for line in requirements:
        match = REQUIREMENT.fullmatch(line.strip())
        if match is None:
            sys.exit(f"cannot read the requirement {line!r}")
        name, _, specifiers = match.groups()
        bound = re.search(r">=\s*([^,\s]+)", specifiers)
        if bound is None:
            sys.exit(f"{name} has no lower bound: give it one in pyproject.toml")
        pins[name.lower()] = bound.group(1)
    return pins


def main() -> None:
    project = tomllib.loads(Path(sys.argv[1]).read_text())["project"]
    pins = lowest(project["dependencies"] + project["optional-dependencies"]["run"])
    print("\n".join(f"{name}=={version}" for name, version in sorted(pins.items())))


if __name__ == "__main__":
    main()
