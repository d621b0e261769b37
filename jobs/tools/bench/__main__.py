"""`python -m jobs.tools.bench`: see jobs/tools/bench/run.py."""
from jobs.tools.bench.run import main

main()
