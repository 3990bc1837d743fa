"""Contender D: the same pipeline written with Quix Streams (runs until SIGTERM)."""

from __future__ import annotations

import tempfile

from quixstreams import Application

from benchmarks.contenders.work import PredictLearn, kafka_arguments


def main() -> None:
    args = kafka_arguments(__doc__ or "").parse_args()
    step = PredictLearn.for_workload(args.workload)
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="quix-state-"),
        loglevel="WARNING",
        auto_create_topics=False,
    )
    events = app.topic(args.input, key_deserializer="bytes", value_deserializer="json")
    predictions = app.topic(args.output, key_serializer="bytes", value_serializer="json")
    sdf = app.dataframe(topic=events)
    sdf = sdf.apply(step)
    # The record key (the event id) carries over to the prediction.
    sdf.to_topic(predictions)
    app.run()


if __name__ == "__main__":
    main()
