"""A small HTTP/1.1 server on 127.0.0.1 for the benchmarks, in its own process.

    python bench/server.py        # prints the port on the first line, serves until stdin closes or SIGTERM

Every path answers 200 {"status":"UP"} with keep-alive; paths starting /slow answer after 100 ms.
asyncio serves every connection at once, so 200 slow requests take 100 ms, not 200 x 100 ms.
"""

from __future__ import annotations

import asyncio
import signal
import sys

BODY = b'{"status":"UP"}'
RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)
SLOW_SECONDS = 0.1


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            request = await reader.readline()
            if not request:
                return
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            parts = request.split()
            if len(parts) > 1 and parts[1].startswith(b"/slow"):
                await asyncio.sleep(SLOW_SECONDS)
            writer.write(RESPONSE)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    except asyncio.CancelledError:  # the server is shutting down: end quietly, no traceback per connection
        pass
    finally:
        writer.close()


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=2048)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: done.done() or done.set_result(None))
    # stdin closing (the benchmark ended, however it ended) stops the server too
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1(1) or done.done() or done.set_result(None))
    async with server:
        await done


if __name__ == "__main__":
    asyncio.run(main())
