"""``streamlearn`` commands; thin wrappers over the package's functions.

This module holds the ``main`` group (the ``streamlearn`` entry point) and adds every
command to it; the commands live in modules by what they do: :mod:`.pipeline` (run,
bootstrap, reset, demo), :mod:`.data` (produce, infer), :mod:`.watch` (tail, top),
:mod:`.dlq`, :mod:`.models` (models, report) and :mod:`.broker`. Their shared helpers are
in :mod:`.common`. No command module imports this one.
"""

from __future__ import annotations

import logging

import click

from streamlearn.cli.broker import broker
from streamlearn.cli.data import infer, produce
from streamlearn.cli.dlq import dlq
from streamlearn.cli.models import models, report
from streamlearn.cli.pipeline import bootstrap, demo, reset, run
from streamlearn.cli.watch import tail, top
from streamlearn.tools.command_line import shown_command

__all__ = ["main", "shown_command"]


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug detail.")
def main(verbose: bool) -> None:
    """Streaming machine learning on Kafka: run pipelines, replay data, watch topics."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kafka-python logs every refused connection while a broker boots, at ERROR; failures
    # that matter reach users as our own one-line errors. -v shows its detail.
    logging.getLogger("kafka").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


main.add_command(run)
main.add_command(bootstrap)
main.add_command(produce)
main.add_command(tail)
main.add_command(infer)
main.add_command(reset)
main.add_command(demo)
main.add_command(dlq)
main.add_command(top)
main.add_command(broker)
main.add_command(models)
main.add_command(report)
