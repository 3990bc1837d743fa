"""streamlearn pipeline files of the benchmark workloads (contender A)."""
