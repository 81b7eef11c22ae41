"""Thin click commands; each module registers one command or group."""

from __future__ import annotations

import click


class HelpGroup(click.Group):
    """A command group whose --help lists each command's whole first sentence.

    Click cuts a description to what fits beside the names and ends it with
    "..."; here it is wrapped instead, so no description is cut off.
    """

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
