"""The service around the calls: the Starlette app, admission and drain, the live-call
registry, admin API and console, metrics, logs, settings and Twilio set-up.

`app.create_app(settings)` assembles it in one visible place. The call path itself
(`agent.call`, `agent.toolrunner`, the providers) knows nothing of this package.
"""
