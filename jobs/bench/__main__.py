"""`python -m jobs.bench`: see jobs/bench/run.py."""
from jobs.bench.run import main

main()
