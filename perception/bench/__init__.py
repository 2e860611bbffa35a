"""Measuring tools, not part of the serving path (which never imports them); run from the command line.

* ``model``    - per-frame latency of one model (``python -m perception.bench.model``)
* ``runtimes`` - latency, throughput and memory per runtime x batch x frame size
  (``scopecast bench perception``, ``python -m perception.bench.runtimes``)
* ``vlm``      - time to first token and tokens/s of the VLM backends (``scopecast bench vlm``)
"""
