"""Material's primary nav, rendered once for every page outside the nav that sees it alike.

Material renders the whole nav into every page: with pmkb's default nav section (nine links)
that cost 0.36 ms a page (0.40 s of a build at 1,000 postmortems), for a nav that is the same
on every page outside it. A page outside the nav (every postmortem) makes no nav item active,
so what Material's nav templates make of it depends on the page only through the URLs they
print, each relative to the page. Here the nav is rendered once per distinct set of those
URLs (as the page sees them) and the output reused.

Only while the nav templates are Material's own (a theme override of any of them may read
anything) and no plugin but pmkb and Material's search works on pages (one could change the
nav, or the page, per page).
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import TemplateNotFound
from mkdocs.utils import normalize_url

NAV = "partials/nav.html"
# what the nav is rendered from: Material's own read nothing of a page outside the nav but
# the URLs they print relative to it (checked for Material 9.x)
TEMPLATES = (NAV, "partials/nav-item.html", "partials/logo.html", "partials/source.html")


def install(env, config, nav) -> NavMemo | None:
    """Have `{% include "partials/nav.html" %}` render through a NavMemo; None where it may not."""
    try:
        import material
    except ImportError:
        return None
    own = (Path(material.__file__).parent / "templates").resolve()
    if env.loader is None:
        return None
    for name in TEMPLATES:  # where each comes from, without compiling it (under serve, in every rebuild)
        try:
            _, filename, _ = env.loader.get_source(env, name)
        except TemplateNotFound:  # another theme
            return None
        if filename is None or not Path(filename).resolve().is_relative_to(own):
            return None
    memo = NavMemo(nav, _urls(config, nav))
    get_template = env.get_template

    def nav_template(name, parent=None, globals=None):
        if name == NAV and globals is None:
            if memo.template is None:
                memo.template = get_template(name, parent)
            return memo
        return get_template(name, parent, globals)

    env.get_template = nav_template
    return memo


def _urls(config, nav) -> tuple[str, ...]:
    """Every URL the nav templates print: each nav item's, the home page's and the logo's."""
    urls: list[str] = []

    def walk(items) -> None:
        for item in items:
            url = getattr(item, "url", None)
            if url is not None:
                urls.append(str(url))
            walk(getattr(item, "children", None) or ())

    walk(nav.items)
    homepage = getattr(nav, "homepage", None)
    if homepage is not None:
        urls.append(str(homepage.url))
    for value in (config.extra.get("homepage"), config.theme.get("logo")):
        if value:
            urls.append(str(value))
    return tuple(urls)


class NavMemo:
    """Stands in for the nav template in Jinja's include: for a page outside the nav, the
    output rendered for the first page that saw every nav URL as this one does."""

    def __init__(self, nav, urls: tuple[str, ...]) -> None:
        self.template = None  # the nav template, once the first page includes it
        self.urls = urls
        self.in_nav = {id(page) for page in nav.pages}
        self.rendered: dict[tuple, str] = {}
        self.reused = 0

    def new_context(self, *args, **kwargs):
        return self.template.new_context(*args, **kwargs)

    def root_render_func(self, context):
        page = context.get("page")
        if page is None or id(page) in self.in_nav or getattr(page, "parent", None) is not None:
            yield from self.template.root_render_func(context)
            return
        base = context.get("base_url", "")
        key = (base, context.get("hidden"), tuple([normalize_url(url, page, base) for url in self.urls]))
        out = self.rendered.get(key)
        if out is None:
            out = self.rendered[key] = "".join(self.template.root_render_func(context))
        else:
            self.reused += 1
        yield out

    def __getattr__(self, name):
        return getattr(self.template, name)
