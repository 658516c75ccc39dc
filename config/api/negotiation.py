"""Content negotiation for endpoints whose answer has a fixed type of its own (a receipt's JWS, an export's CSV
chosen by its own `format` parameter): the view's first parser and renderer, whatever the Accept header or DRF's
`format` override say, so errors still come in the one JSON shape."""

from rest_framework.negotiation import BaseContentNegotiation


class FirstRendererNegotiation(BaseContentNegotiation):
    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
