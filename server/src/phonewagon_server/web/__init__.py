"""The account's web app, under /app/: sign in, Calls, Tracking, Account Settings → Credentials.

Server-rendered (Jinja2, autoescaped), a stylesheet and one small script of our own, no inline
script or style (the CSP forbids both), every form CSRF-protected by its route's policy.
"""
