"""The tag a company pastes into every page of its site: `dni snippet`, the web app's Tracking
page and the demo's landing page show it."""


def snippet(public_url: str, key: str) -> str:
    return f'<script async src="{public_url}/dni.js" data-key="{key}"></script>'
