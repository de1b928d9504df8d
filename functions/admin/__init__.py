"""The admin API's routes, one module per area, registered on ``functions.admin_api.api``.

Each handler is thin: the router has already verified the token, admitted the role and parsed
the query and body into the route's models; the handler calls one service and returns a model.
"""
