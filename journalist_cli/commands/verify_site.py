"""`lanterne verify-site URL`: does an instance serve this release's scripts and styles?

Exit codes: 0 when every asset, listed digest and integrity attribute matches
the installed release and every source page has its security headers and no
inline code; 1 with the list of differences otherwise; 4 when the site cannot
be reached or does not answer like Lanterne.
"""

from __future__ import annotations

from pathlib import Path

import click

from journalist_cli import config, site_check
from journalist_cli.errors import CliError


class SiteDiffers(CliError):
    """The site serves something other than the release (exit code 1)."""


@click.command("verify-site")
@click.argument("url")
@click.option("--proxy", help="SOCKS proxy for Tor, e.g. socks5h://127.0.0.1:9050.")
@click.option(
    "--static-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Compare with this copy of server/static instead of the installed release's.",
)
def verify_site_command(url: str, proxy: str | None, static_dir: Path | None) -> None:
    """Compare the scripts and stylesheets URL serves with this release's.

    Fetches /.well-known/lanterne-assets.json, every static file and the
    source pages (through --proxy when given), and checks their SHA-256
    digests and Subresource Integrity against the files shipped with this
    release of Lanterne. Each page must also carry the release's
    Content-Security-Policy (or a stricter one) and security headers, and no
    inline script, style, event handler or javascript: URL. With a pinned
    newsroom key (`lanterne config --newsroom`), the source pages must name
    exactly that key and show its fingerprint.
    """
    release = site_check.local_assets(static_dir or site_check.release_static_dir())
    with site_check.open_client(url, config.check_proxy_url(proxy) if proxy else None) as client:
        newsroom = config.load_config(config.lanterne_home()).newsroom
        report = site_check.check_site(client, release, newsroom)
    if not report.ok:
        lines = "\n".join(f"  - {m}" for m in report.mismatches)
        raise SiteDiffers(f"{url} differs from this release:\n{lines}")
    click.echo(
        f"{url}: all {report.assets_checked} static files and "
        f"{report.references_checked} script and stylesheet references match this release;"
        f" {report.pages_checked} pages carry its security headers and no inline code."
    )
