"""A stand-in for Hugging Face's `spaces` package (ZeroGPU) for tests; put tests/stubs on PYTHONPATH.

`GPU(duration=...)` works as the real decorator is documented to: bare or with a duration (seconds, or a
function of the decorated function's arguments), generators stay generators.  Each call appends
{"fn": name, "duration": seconds} to $SPACES_STUB_LOG, and every returned or yielded value is pickled and
unpickled, as the real package does when it moves results out of its GPU worker process (so a value that
could not leave the worker, such as a CUDA tensor or an unpicklable object, fails here too).
"""
import functools
import inspect
import json
import os
import pickle


def _record(fn, duration, args, kwargs) -> None:
    seconds = duration(*args, **kwargs) if callable(duration) else duration
    with open(os.environ["SPACES_STUB_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"fn": fn.__name__, "duration": seconds}) + "\n")


def _carried(value):
    for item in value if isinstance(value, tuple) else (value,):
        if type(item).__module__ == "torch" and getattr(item, "is_cuda", False):
            raise TypeError("a CUDA tensor cannot leave a ZeroGPU worker")
    return pickle.loads(pickle.dumps(value))


def GPU(fn=None, duration=60):  # noqa: N802 - the real package's name
    def decorate(f):
        if inspect.isgeneratorfunction(f):
            @functools.wraps(f)
            def gen(*args, **kwargs):
                _record(f, duration, args, kwargs)
                for item in f(*args, **kwargs):
                    yield _carried(item)
            return gen

        @functools.wraps(f)
        def call(*args, **kwargs):
            _record(f, duration, args, kwargs)
            return _carried(f(*args, **kwargs))
        return call
    return decorate(fn) if fn is not None else decorate
