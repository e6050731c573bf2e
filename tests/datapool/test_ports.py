"""datapool.ports.free_port: stacks started at once in one process never share a port."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from datapool.ports import free_port


def test_no_port_is_handed_out_twice_even_from_threads_at_once() -> None:
    # 2,000 draws from the kernel's ~28,000 ephemeral ports repeat one about 70 times when
    # nothing remembers them: two stacks' children then race for one port.
    with ThreadPoolExecutor(4) as ex:
        ports = list(ex.map(lambda _: free_port(), range(2000)))
    assert len(set(ports)) == len(ports)
