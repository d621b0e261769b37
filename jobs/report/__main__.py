from jobs.report.job import main

if __name__ == "__main__":
    raise SystemExit(main())
