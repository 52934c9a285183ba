"""The pages' static files: fingerprinted names cached for a year, and the HTML that points to them.

Files under `static/` are the source: no build step. Each is served at `/static/<path>` (for
development, revalidated on every use) and at `/static/<name>.<hash>.<ext>` (cached for a year,
since the name changes with the content). Templates refer to `/static/<path>`; `render` rewrites
those references to the fingerprinted names and adds an import map, so that ES modules importing
each other by relative path load the fingerprinted files too.
"""

import hashlib
import json
import re
from base64 import b64encode
from pathlib import Path, PurePosixPath

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).with_name("static")
TEMPLATE_DIR = Path(__file__).with_name("templates")
STATIC_PATH = "/static"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
MODULE_SUFFIXES = frozenset({".js", ".mjs"})
# A quoted /static/... reference in an attribute (src, href) of a template.
_REFERENCE = re.compile(r'(["\'])/static/([A-Za-z0-9_./@-]+)\1')


def fingerprinted(path: str, content: bytes) -> str:
    """`path` with a hash of `content` before its last suffix: js/app.js -> js/app.1a2b3c4d5e.js."""
    pure = PurePosixPath(path)
    digest = hashlib.sha256(content).hexdigest()[:10]
    return str(pure.with_name(f"{pure.stem}.{digest}{pure.suffix}"))


def script_json(value: object) -> str:
    """`value` as JSON that can sit inside a <script> element: no <, > or & in its text."""
    text = json.dumps(value, sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def script_hash(source: str) -> str:
    """The CSP source expression that allows one inline script with this exact text."""
    return "'sha256-" + b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


class Assets(StaticFiles):
    """Static files by plain and fingerprinted name, and the templates rendered against them."""

    def __init__(self, directory: Path = STATIC_DIR, templates: Path = TEMPLATE_DIR) -> None:
        super().__init__(directory=directory, follow_symlink=False)
        self.templates = templates
        self.names: dict[str, str] = {}  # plain path -> fingerprinted path
        self.originals: dict[str, str] = {}  # fingerprinted path -> plain path
        for file in sorted(directory.rglob("*")):
            if file.is_file():
                plain = file.relative_to(directory).as_posix()
                name = fingerprinted(plain, file.read_bytes())
                self.names[plain] = name
                self.originals[name] = plain

    def url(self, path: str) -> str:
        """The fingerprinted URL of a static file (KeyError when there is none)."""
        return f"{STATIC_PATH}/{self.names[path]}"

    def import_map(self) -> str:
        """The import map's JSON: each module's plain URL mapped to its fingerprinted one."""
        imports = {
            f"{STATIC_PATH}/{plain}": self.url(plain)
            for plain in self.names
            if PurePosixPath(plain).suffix in MODULE_SUFFIXES
        }
        return json.dumps({"imports": imports}, sort_keys=True, separators=(",", ":"))

    def render(self, template: str, **data: object) -> "Page":
        """A template with its /static references fingerprinted, an import map, and each
        `{{ name }}` placeholder replaced by `data[name]` as JSON (for a JSON data block)."""
        text = (self.templates / template).read_text(encoding="utf-8")

        def reference(match: re.Match[str]) -> str:
            quote, path = match.groups()
            if path not in self.names:
                raise LookupError(f"{template} refers to /static/{path}, which does not exist")
            return f"{quote}{self.url(path)}{quote}"

        text = _REFERENCE.sub(reference, text)
        for name, value in data.items():
            placeholder = "{{ " + name + " }}"
            if placeholder not in text:
                raise LookupError(f"{template} has no placeholder {placeholder}")
            text = text.replace(placeholder, script_json(value))
        import_map = self.import_map()
        if "<script" not in text:
            raise LookupError(f"{template} has no script")
        # Before the first script: an import map must come before the modules it maps.
        tag = f'<script type="importmap">{import_map}</script>\n'
        text = text.replace("<script", tag + "<script", 1)
        return Page(text, script_hash(import_map))

    async def get_response(self, path: str, scope: Scope) -> Response:
        requested = PurePosixPath(path).as_posix()
        plain = self.originals.get(requested)
        response = await super().get_response(plain or requested, scope)
        if response.status_code in (200, 304):
            response.headers["cache-control"] = IMMUTABLE if plain else REVALIDATE
            response.headers["x-content-type-options"] = "nosniff"
        return response


class Page:
    """A rendered page and the Content-Security-Policy that lets its import map run."""

    def __init__(self, text: str, import_map_hash: str) -> None:
        self.text = text
        self.policy = "; ".join(
            (
                "default-src 'self'",
                f"script-src 'self' {import_map_hash}",
                # Inline style attributes: ECharts and GraphiQL position their elements with them.
                "style-src 'self' 'unsafe-inline'",
                "img-src 'self' data:",
                "font-src 'self' data:",
                "connect-src 'self'",
                "frame-ancestors 'none'",
                "base-uri 'none'",
                "form-action 'self'",
                "object-src 'none'",
            )
        )
