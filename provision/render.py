"""Render templates/ on the controller with StrictUndefined, exactly as Ansible's template
module would (trim_blocks on, lstrip_blocks off, trailing newline kept), so provision and
playbooks/ write byte-identical files."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import jinja2

from provision.errors import InputError


def template_dir() -> Path:
    """Where templates live: $BERTH_TEMPLATES, the repo's templates/, or the installed copy."""
    env = os.environ.get("BERTH_TEMPLATES")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent
    candidates += [here.parent / "templates", here / "templates"]
    for c in candidates:
        if c.is_dir():
            return c
    raise InputError("templates not found: set BERTH_TEMPLATES to the templates/ directory")


@lru_cache(maxsize=4)
def _env(path: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(path),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=False,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(name: str, variables: dict) -> bytes:
    """Render template ``name``; a missing variable is an :class:`InputError` naming it."""
    env = _env(str(template_dir()))
    try:
        return env.get_template(name).render(**variables).encode()
    except jinja2.UndefinedError as e:
        raise InputError(
            f"template {name}: missing variable ({e.message}); pass it or fix the template"
        ) from None
    except jinja2.TemplateNotFound:
        raise InputError(f"template {name} not found in {template_dir()}") from None
    except jinja2.TemplateSyntaxError as e:
        raise InputError(f"template {name} line {e.lineno}: {e.message}") from None
