"""Choosing the procedure: by its number in the routing menu (digits, "três", "a segunda"),
by a procedure the message names, by similarity to the scripts' examples, or by its title.
"""

from __future__ import annotations

from clinicflow import slots as slot_values
from clinicflow.model import Catalog, Script
from clinicflow.text import PhraseMatcher
from clinicflow.understanding import Understanding


class Router:
    """Picks a script for a message (shared, read-only)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._titles = PhraseMatcher((s.id, s.title) for s in catalog.scripts)

    def number(self, u: Understanding, text: str) -> int | None:
        """The routing menu's option the message picks by number, if any."""
        count = len(self.catalog.scripts)
        number = u.choice if u.choice is not None else slot_values.option_number(text, count)
        return number if number is not None and 1 <= number <= count else None

    def pick(self, u: Understanding, text: str, *, at_menu: bool) -> Script | None:
        """The script the message chooses (``at_menu``: the routing menu was shown)."""
        if at_menu:
            number = self.number(u, text)
            if number is not None:
                return self.catalog.scripts[number - 1]
        if u.scripts or u.similar_script:
            return self.catalog.script(u.scripts[0] if u.scripts else str(u.similar_script))
        if at_menu:
            by_title = self._titles.keys(text)
            if len(by_title) == 1:
                return self.catalog.script(by_title[0])
        return None
