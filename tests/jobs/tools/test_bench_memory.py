"""The bench's memory sampler counts the Spark JVM once and not the helpers the JVM starts for a moment."""
from __future__ import annotations

import subprocess
import sys
import time

import psutil

from jobs.tools.bench.run import PeakMemory

HELPER_MIB = 600
# a child that is neither the JVM nor a Python worker, holding 600 MiB under the name `chmod` (like the
# helpers Hadoop starts from the JVM, which report the JVM's memory until they execute their program)
HELPER = ("import ctypes, time; ctypes.CDLL(None).prctl(15, b'chmod', 0, 0, 0); "
          f"held = bytearray({HELPER_MIB} * 2 ** 20); time.sleep(60)")


def test_sampler_counts_this_process_the_jvm_and_workers_but_not_other_children(spark):
    helper = subprocess.Popen([sys.executable, "-c", HELPER])
    try:
        proc = psutil.Process(helper.pid)
        deadline = time.time() + 20
        while not (proc.name() == "chmod" and proc.memory_info().rss > HELPER_MIB * 2 ** 20 * 0.9):
            assert time.time() < deadline, "helper did not start"
            time.sleep(0.1)
        me = psutil.Process()
        jvm_rss = sum(p.memory_info().rss for p in me.children() if p.name().startswith("java"))
        workers_rss = sum(p.memory_info().rss for p in me.children(recursive=True) if p.name().startswith("python"))
        total, jvm = PeakMemory().sample()
        assert jvm_rss > 0
        assert abs(jvm - jvm_rss) <= 0.1 * jvm_rss          # the JVM, once (its RSS moves between readings)
        expected = me.memory_info().rss + jvm_rss + workers_rss
        # within 300 MiB of this process + JVM + workers; counting the helper would add 600 MiB
        assert abs(total - expected) < 300 * 2 ** 20, (total, expected)
    finally:
        helper.kill()
        helper.wait()
