"""The one cache counter every limit uses (portal/counters.py), on the configured cache."""

import time_machine

from portal import counters


def test_it_counts_first_and_takes_back():
    assert [counters.count("c", 60) for _ in range(3)] == [1, 2, 3]
    counters.uncount("c")
    assert counters.count("c", 60) == 3
    counters.forget("c")
    assert counters.count("c", 60) == 1


def test_it_counts_many_at_once():
    assert counters.count("bytes", 60, by=1000) == 1000
    assert counters.count("bytes", 60, by=24) == 1024


def test_a_clock_window_is_one_counter_until_its_edge():
    with time_machine.travel(600.0, tick=False) as clock:  # a window of 60 s starts here
        first = counters.count_in_window("minute", 60)
        clock.shift(59)
        second = counters.count_in_window("minute", 60)
        assert (first.value, second.value) == (1, 2) and first.key == second.key
        assert counters.value_in_window("minute", 60) == 2
        assert counters.seconds_left_in_window(60) == 1
        clock.shift(1)
        assert counters.value_in_window("minute", 60) == 0
        assert counters.count_in_window("minute", 60).value == 1
        counters.uncount(first.key)  # a count of the last window, taken back after its edge
        assert counters.value_in_window("minute", 60) == 1
