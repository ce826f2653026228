import sys
def test_placeholder():
    import workers, workers.queue
    print(workers.__file__, __name__, __file__)
    assert workers.queue.enqueue
