"""``neurosym serve``: the SPARQL 1.1 Protocol endpoint over the store's RDF view (see docs/endpoint.md)."""

from __future__ import annotations

import click

from pipelines.commands.options import allow_service_option, store_option

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command("serve")
@store_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback by default).")
@click.option("--port", default=7878, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free port).")
@click.option("--timeout", "timeout_s", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Seconds a query may run; then its worker is stopped and the answer is 503.")
@click.option("--max-rows", default=100_000, show_default=True, type=click.IntRange(min=1),
              help="Most result rows (SELECT) or triples (CONSTRUCT/DESCRIBE); more is answered 422.")
@click.option("--max-body", default=1 << 20, show_default=True, type=click.IntRange(min=1),
              help="Largest request body in bytes; more is answered 413.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(min=1),
              help="Worker processes: queries evaluated at once (more wait for one).")
@click.option("--backlog", default=1024, show_default=True, type=click.IntRange(min=1),
              help="Connections the operating system holds until the server accepts them.")
@allow_service_option
@click.option("--allow-updates", is_flag=True, help="Accept INSERT DATA from clients that send the token.")
@click.option("--token", envvar="NEUROSYM_UPDATE_TOKEN", default=None,
              help="Bearer token that updates must carry (env NEUROSYM_UPDATE_TOKEN; needed with --allow-updates).")
@click.option("--quiet", is_flag=True, help="Do not log each request to standard error.")
def serve_command(store, host, port, timeout_s, max_rows, max_body, workers, backlog, allow_service, allow_updates,
                  token, quiet):
    """Serve the store's RDF view as a SPARQL 1.1 Protocol endpoint (read-only by default)."""
    from kg.endpoint.server import EndpointConfig, SparqlEndpoint
    from kg.store import Store

    if allow_updates and not token:
        raise click.UsageError("--allow-updates needs --token (or NEUROSYM_UPDATE_TOKEN)")
    config = EndpointConfig(host=host, port=port, timeout_s=timeout_s, max_rows=max_rows, max_body=max_body,
                            workers=workers, backlog=backlog, allow_service=allow_service, allow_updates=allow_updates,
                            token=token, log_requests=not quiet)
    with Store.open(store) as opened, SparqlEndpoint(opened, config) as endpoint:
        if host not in LOOPBACK:
            click.echo(f"warning: listening on {host}, reachable from other machines", err=True)
        mode = "updates: INSERT DATA with token" if allow_updates else "read-only"
        if allow_service:
            mode += f"; SERVICE to {', '.join(allow_service)}"
        click.echo(f"SPARQL endpoint {endpoint.url} ({mode}) over {store}; page at {endpoint.url[:-len('sparql')]}; Ctrl-C stops",
                   err=True)
        try:
            endpoint.serve_forever()
        except KeyboardInterrupt:
            click.echo("stopped", err=True)


COMMANDS = [serve_command]
