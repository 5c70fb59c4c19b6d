"""The viewer: browse experiments, cells and transcripts of a results database in a
browser, read-only (`amlab view DB`)."""

from amlab.web.app import create_app
from amlab.web.server import BackgroundViewer, bind, make_server, start_in_background, url_of

__all__ = ["BackgroundViewer", "bind", "create_app", "make_server", "start_in_background",
           "url_of"]
