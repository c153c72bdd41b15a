"""A real RTSP server for the tests (and the bench): GStreamer's gst-rtsp-server serving one gst
pipeline at rtsp://127.0.0.1:PORT/PATH, shared by every client.

  /usr/bin/python3 rtsp_server.py --port 0 --path cam --pipeline "videotestsrc is-live=true ! x264enc ! rtph264pay name=pay0"

Prints one line {"port": N} on stdout once it listens (the bound port: --port 0 picks a free
one), then serves until killed. Run with Debian's /usr/bin/python3, which has python3-gi and
gir1.2-gst-rtsp-server-1.0.
"""

import argparse
import json
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--path", default="cam")
    parser.add_argument("--pipeline", required=True)
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( " + args.pipeline + " )")
    # One pipeline for every client, as a camera has.
    factory.set_shared(True)
    server.get_mount_points().add_factory("/" + args.path, factory)
    if server.attach(None) == 0:
        sys.stderr.write("rtsp_server: cannot listen on port %d\n" % args.port)
        sys.exit(1)
    sys.stdout.write(json.dumps({"port": server.get_bound_port()}) + "\n")
    sys.stdout.flush()
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
