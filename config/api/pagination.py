from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


class StandardPagination(PageNumberPagination):
    """Pages of 50 by default; callers may ask for 1 to 200 with `page_size`.

    `page` and `page_size` are each one whole number in range, or absent: a repeated, empty, `null` or
    out-of-range value is a 400 rather than a silent default, so a caller never reads a page it did not ask
    for. A page past the last one is a 404.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    last_page_strings = ()

    def _number(self, request: Request, name: str, maximum: int | None) -> int | None:
        values = request.query_params.getlist(name)
        if not values:
            return None
        bound = f" and at most {maximum}" if maximum is not None else ""
        invalid = ValidationError({name: [f"Give {name} once, as a whole number of at least 1{bound}."]})
        text = values[0]
        if len(values) > 1 or not text.isascii() or not text.isdigit():
            raise invalid
        if len(text) > 18:  # far past any last page (and past what int() should be asked to read)
            if maximum is None:
                raise NotFound(self.invalid_page_message)
            raise invalid
        number = int(text)
        if number < 1 or (maximum is not None and number > maximum):
            raise invalid
        return number

    def get_page_size(self, request: Request) -> int:
        size = self._number(request, self.page_size_query_param, self.max_page_size)
        return self.page_size if size is None else size

    def get_page_number(self, request: Request, paginator: Any) -> int:
        number = self._number(request, self.page_query_param, None)
        return 1 if number is None else number

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        bounds = {
            self.page_query_param: {"minimum": 1},
            self.page_size_query_param: {"minimum": 1, "maximum": self.max_page_size, "default": self.page_size},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        paginated = super().get_paginated_response_schema(schema)
        paginated["required"] = ["count", "next", "previous", "results"]
        paginated["properties"]["count"]["minimum"] = 0
        return paginated
