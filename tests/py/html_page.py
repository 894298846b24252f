"""The parts of an HTML page a scripted user acts on, for the tests' scripted browsers
(oidc_browser.py, saml_assertion.py): its forms (id, action, method, fields with their values),
links, title and text. Standard library only."""

import html.parser


class Page(html.parser.HTMLParser):
    def __init__(self, body):
        super().__init__()
        self.forms = []
        self.links = []
        self.title = ""
        self.texts = []
        self._in_title = False
        self.feed(body)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "id": attrs.get("id", ""),
                    "action": attrs.get("action", ""),
                    "method": attrs.get("method", "get").lower(),
                    "fields": {},
                }
            )
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")
        elif tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        text = " ".join(data.split())
        if self._in_title:
            self.title += text
        elif text:
            self.texts.append(text)

    def form(self, predicate):
        """The first form `predicate` accepts, else None."""
        return next((f for f in self.forms if predicate(f)), None)

    def form_with(self, field):
        """The first form with a field named `field`, else None."""
        return self.form(lambda f: field in f["fields"])

    def summary(self):
        return f"{self.title.strip()!r}: {' '.join(self.texts)[:600]}"
