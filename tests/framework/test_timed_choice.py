"""TimedChoice (minidl/timed_choice.py): the faster of two equivalent ways, timed where they run."""
import pytest

from minidl.timed_choice import TimedChoice


def measure(choice, key, seconds_of, calls):
    """Make ``calls`` calls the way ``choice`` picks, each taking ``seconds_of[way]``; the ways, in order."""
    ways = []
    for _ in range(calls):
        way = choice.pick(key)
        choice.took(key, way, seconds_of[way])
        ways.append(way)
    return ways


@pytest.mark.parametrize("faster", [0, 1])
def test_alternates_until_each_way_has_its_trials_then_keeps_the_faster(faster):
    choice = TimedChoice(trials=3, warmup=2, recheck=100)
    seconds = {faster: 1.0, 1 - faster: 2.0}
    ways = measure(choice, "k", seconds, 10)
    assert ways == [0, 1] * 5                 # 2 warm-up calls and 3 trials of each, way 0 first
    assert choice.chosen("k") == faster
    assert measure(choice, "k", seconds, 20) == [faster] * 20


def test_warm_up_calls_are_not_counted_and_the_median_ignores_one_outlier():
    """Way 0's first call (a cold start) and one later hiccup would make its mean the larger; its median
    is the smaller."""
    choice = TimedChoice(trials=3, warmup=1, recheck=100)
    times = {0: [50.0, 1.0, 9.0, 1.0], 1: [1.0, 2.0, 2.0, 2.0]}
    for _ in range(8):
        way = choice.pick("k")
        choice.took("k", way, times[way].pop(0))
    assert choice.chosen("k") == 0


def test_a_tie_keeps_way_0_and_a_way_timed_while_not_measuring_is_ignored():
    choice = TimedChoice(trials=2, warmup=0, recheck=100)
    measure(choice, "k", {0: 1.0, 1: 1.0}, 4)
    assert choice.chosen("k") == 0
    choice.took("k", 1, 0.0)                  # a chosen key takes no more times
    choice.took("unseen", 1, 0.0)             # nor does a key never picked
    assert choice.chosen("k") == 0 and choice.chosen("unseen") is None


def test_after_recheck_calls_both_ways_are_measured_again():
    """The machine was busy while the first choice was made: the next measurement may choose otherwise."""
    choice = TimedChoice(trials=2, warmup=0, recheck=5)
    measure(choice, "k", {0: 1.0, 1: 2.0}, 4)
    assert choice.chosen("k") == 0
    assert measure(choice, "k", {0: 3.0, 1: 2.0}, 5) == [0] * 5
    assert measure(choice, "k", {0: 3.0, 1: 2.0}, 4) == [0, 1, 0, 1]
    assert choice.chosen("k") == 1


def test_keys_are_measured_apart_and_forgotten_all_at_once_past_max_keys():
    choice = TimedChoice(trials=1, warmup=0, recheck=100, max_keys=2)
    measure(choice, "a", {0: 1.0, 1: 2.0}, 2)
    measure(choice, "b", {0: 2.0, 1: 1.0}, 2)
    assert (choice.chosen("a"), choice.chosen("b")) == (0, 1)
    assert choice.pick("c") == 0              # a third key: the other two are forgotten
    assert choice.chosen("a") is None and choice.chosen("b") is None


@pytest.mark.parametrize("arguments", [dict(trials=0), dict(warmup=-1), dict(recheck=0), dict(max_keys=0)])
def test_bad_settings_are_refused(arguments):
    with pytest.raises(ValueError, match="TimedChoice needs"):
        TimedChoice(**arguments)
