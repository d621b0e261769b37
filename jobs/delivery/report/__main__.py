from jobs.delivery.report.job import main

if __name__ == "__main__":
    raise SystemExit(main())
