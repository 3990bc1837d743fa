"""streamlearn's benchmark harness: ``python -m benchmarks`` (``make bench``).

Every contender does the same work (consume JSON events, predict, produce the prediction,
learn from the label in the event) on the same broker, topics and partitions, each in its
own process. The harness pre-produces the input once per workload, runs the contenders in
interleaved repetitions, reads their output back, and reports ratios of medians.
"""
