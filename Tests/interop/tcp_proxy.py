"""A TCP forwarder the tests can cut: the database "going away" without stopping PostgreSQL.

Usage: tcp_proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT

Forwards every connection on 127.0.0.1:LISTEN_PORT to TARGET. Killed (the tests send SIGKILL), its
listening socket and every open connection close at once, as a database host going away looks to
a client; SIGTERM closes them too and exits. Prints "ready" when listening.
"""
import asyncio
import os
import signal
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main():
    listen_port, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    tasks = set()
    writers = set()

    async def handle(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()
            return
        writers.update({client_writer, upstream_writer})
        for task in (asyncio.ensure_future(pipe(client_reader, upstream_writer)), asyncio.ensure_future(pipe(upstream_reader, client_writer))):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    for writer in list(writers):
        transport = writer.transport
        if transport is not None:
            transport.abort()
    for task in list(tasks):
        task.cancel()
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
