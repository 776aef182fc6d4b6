"""The tool discovery quality suite: queries a user would type, the stdlib tool each should
find, and 100 decoy tools from other domains to find it among.

The stdlib tools' names and descriptions are read from ``stdlib_tools/*.yaml`` when the suite
runs, so the suite measures the descriptions as shipped. Queries are phrased as people ask,
not copied from the descriptions. The decoys are realistic tools of other domains (mail,
calendars, weather, markets, images, databases, translation, cloud storage...), some
deliberately close to a stdlib tool (``s3_download_object`` near ``http_get``,
``timezone_convert`` near ``current_time``, ``xml_xpath_query`` near ``json_query``): a
lexical embedder that only counts shared words trips on those.

``CASES`` were written first and the default embedder was tuned on them; ``HELD_OUT`` were
written after the tuning was done and never used for it, so their figures are the honest
ones. :func:`evaluate` reports both.

Run ``python benchmarks/discovery_bench.py`` for the figures of every embedder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from runtime.embed import Embedder
from runtime.tools.discovery import Candidate, ToolIndex, search_text

ROOT: Final = Path(__file__).resolve().parents[1]
STDLIB_DIR: Final = ROOT / "stdlib_tools"

STDLIB_NAMES: Final = (
    "calculator",
    "current_time",
    "word_count",
    "http_get",
    "http_request",
    "file_read",
    "file_write",
    "file_list",
    "text_search",
    "json_query",
    "python",
)

#: (query, the stdlib tool it should find)
CASES: Final[tuple[tuple[str, str], ...]] = (
    ("what is 17% of 2350", "calculator"),
    ("work out the square root of 1764", "calculator"),
    ("do some arithmetic on a few numbers", "calculator"),
    ("multiply two large numbers together", "calculator"),
    ("evaluate a math formula", "calculator"),
    ("what time is it right now in Tokyo", "current_time"),
    ("today's date", "current_time"),
    ("what does the clock say in New York", "current_time"),
    ("get the current UTC timestamp", "current_time"),
    ("how many words are in this essay", "word_count"),
    ("count the characters in a paragraph", "word_count"),
    ("number of lines in a piece of text", "word_count"),
    ("check how long my text is in words", "word_count"),
    ("download the contents of a web page", "http_get"),
    ("fetch https://example.com and show me the html", "http_get"),
    ("grab the page at this url", "http_get"),
    ("read a website", "http_get"),
    ("retrieve a public API response with a simple GET", "http_get"),
    ("send a POST request with a JSON body to an API", "http_request"),
    ("call a REST endpoint with custom headers", "http_request"),
    ("make an HTTP PUT to update a resource", "http_request"),
    ("submit form data to a webhook", "http_request"),
    ("delete a resource through the API with the DELETE method", "http_request"),
    ("open notes.txt and show me what's in it", "file_read"),
    ("read the contents of a document in my workspace", "file_read"),
    ("load report.md", "file_read"),
    ("print a text file", "file_read"),
    ("save this text to a file", "file_write"),
    ("write the results to output.csv", "file_write"),
    ("create a new file with some content", "file_write"),
    ("store the summary on disk", "file_write"),
    ("what files are in the workspace", "file_list"),
    ("show me the folder contents", "file_list"),
    ("list directory entries", "file_list"),
    ("ls the current directory", "file_list"),
    ("grep for TODO in all my files", "text_search"),
    ("find which file mentions the word invoice", "text_search"),
    ("search the workspace for a regex pattern", "text_search"),
    ("look for lines containing error in the logs", "text_search"),
    ("pull the name field out of this JSON", "json_query"),
    ("extract nested values from a JSON object with a path expression", "json_query"),
    ("jq-style filter on an API response", "json_query"),
    ("select items[0].price from a json document", "json_query"),
    ("run a python snippet", "python"),
    ("execute some code to sort a list", "python"),
    ("run a small script that crunches data", "python"),
    ("compute fibonacci numbers with a program", "python"),
    ("execute python code in a sandbox", "python"),
)

#: written after the default embedder's tuning, never used for it
HELD_OUT: Final[tuple[tuple[str, str], ...]] = (
    ("how much is 45 divided by 9 plus 3", "calculator"),
    ("convert 3/8 to a decimal by computing it", "calculator"),
    ("what day of the week is it today", "current_time"),
    ("current local time in Paris", "current_time"),
    ("tally the words of the following sentence", "word_count"),
    ("get the raw html of a news site homepage", "http_get"),
    ("call an API with a bearer token in the Authorization header", "http_request"),
    ("PATCH a record on our internal service", "http_request"),
    ("show me what config.yaml says", "file_read"),
    ("dump this dataframe to a csv file in the workspace", "file_write"),
    ("which documents do I have in the folder", "file_list"),
    ("search all my notes for the phrase quarterly budget", "text_search"),
    ("get $.store.book[*].author from this json", "json_query"),
    ("evaluate a python expression for me", "python"),
    ("run this code and tell me what it prints", "python"),
    ("write a value into a new text file called todo.txt", "file_write"),
)


@dataclass(frozen=True, slots=True)
class Decoy:
    name: str
    description: str
    domain: str


# domain -> "name | description" lines; a decoy's label ``category`` is its domain
_DECOYS: Final[dict[str, str]] = {
    "email": """
    email_send | Send an email message to one or more recipients.
    email_search_inbox | Search the inbox for messages matching words.
    email_read_message | Open an email by id and return its body.
    email_list_folders | List the mail folders of the account.
    email_draft_reply | Draft a reply to an email thread.
    email_add_attachment | Attach a file to a draft email.
    """,
    "calendar": """
    calendar_create_event | Create a calendar event with a title and time.
    calendar_list_events | List upcoming events between two dates.
    calendar_find_free_slot | Find a free meeting slot for several people.
    calendar_cancel_event | Cancel a meeting and notify the attendees.
    calendar_reschedule | Move an appointment to another day or hour.
    """,
    "weather": """
    weather_current | Current weather conditions for a city.
    weather_forecast | Seven-day weather forecast for a location.
    air_quality_index | Air pollution level at a place.
    sunrise_sunset | Sunrise and sunset times for a date and place.
    """,
    "finance": """
    stock_quote | Latest stock price for a ticker symbol.
    stock_history | Daily closing prices of a stock over a period.
    crypto_price | Price of a cryptocurrency in dollars.
    currency_convert | Convert an amount of money between currencies.
    loan_payment | Monthly payment of a loan from rate, amount and term.
    invoice_create | Create an invoice for a customer.
    """,
    "images": """
    image_resize | Resize a picture to a given width and height.
    image_caption | Describe what an image shows in a sentence.
    image_ocr | Read the printed text in a photo or scanned page.
    image_generate | Generate an image from a text prompt.
    image_convert_format | Convert an image between PNG, JPEG and WebP.
    qr_code_generate | Make a QR code image for a URL or text.
    """,
    "databases": """
    sql_query | Run a read-only SQL query on the analytics database.
    db_insert_row | Insert a row into a database table.
    db_list_tables | List the tables of a database schema.
    db_describe_table | Show the columns and types of a table.
    kv_get | Get the value stored under a key in the key-value store.
    kv_set | Store a value under a key in the key-value store.
    vector_search | Nearest-neighbour search over stored embeddings.
    """,
    "language": """
    translate_text | Translate text from one language to another.
    detect_language | Detect which language a passage is written in.
    spell_check | Find and fix spelling mistakes.
    sentiment_analysis | Score whether a review is positive or negative.
    text_summarize | Summarize a long article in a few sentences.
    dictionary_define | Definition of an English word.
    synonyms_lookup | Words with a similar meaning to a given word.
    grammar_check | Check a sentence for grammar errors.
    """,
    "storage": """
    s3_download_object | Download an object from an S3 bucket.
    s3_upload_object | Upload a file to an S3 bucket.
    s3_list_objects | List the objects in an S3 bucket under a prefix.
    gdrive_search | Search Google Drive for documents by title.
    dropbox_share_link | Create a shareable link to a Dropbox file.
    file_delete | Delete a file permanently.
    file_move | Move or rename a file.
    zip_archive | Compress a folder into a zip archive.
    pdf_extract_text | Extract the text of a PDF document.
    csv_to_table | Parse a CSV file into rows and columns.
    """,
    "web": """
    web_search | Search the internet with a search engine and return result links.
    html_to_markdown | Convert HTML markup to Markdown.
    url_shorten | Shorten a long URL.
    rss_read_feed | Read the latest entries of an RSS feed.
    website_screenshot | Take a screenshot of a website.
    dns_lookup | Resolve a domain name to IP addresses.
    check_site_uptime | Check whether a website is up and how fast it answers.
    wikipedia_summary | Summary of a Wikipedia article on a topic.
    """,
    "dev": """
    git_commit | Commit staged changes with a message.
    git_log | Show the commit history of a repository.
    github_create_issue | Open an issue on a GitHub repository.
    shell_command | Run a shell command on the build server.
    javascript_eval | Execute a JavaScript snippet in Node.
    docker_list_containers | List running Docker containers.
    ci_trigger_build | Start a CI pipeline for a branch.
    lint_code | Lint source code and report style problems.
    regex_replace | Replace every match of a regular expression in a string.
    xml_xpath_query | Select nodes of an XML document with an XPath expression.
    yaml_validate | Validate a YAML document against a schema.
    json_format | Pretty-print and indent JSON.
    base64_encode | Encode bytes as base64.
    hash_sha256 | SHA-256 digest of a string.
    uuid_generate | Generate a random UUID.
    """,
    "messaging": """
    slack_post_message | Post a message to a Slack channel.
    slack_list_channels | List the channels of the Slack workspace.
    sms_send | Send a text message to a phone number.
    push_notification | Send a push notification to the mobile app.
    """,
    "maps": """
    geocode_address | Turn a street address into coordinates.
    maps_directions | Driving or walking directions between two places.
    nearby_places | Restaurants, shops and sights near a location.
    distance_between | Distance in kilometres between two cities.
    timezone_convert | Convert a time from one time zone to another.
    """,
    "business": """
    crm_lookup_contact | Find a customer contact in the CRM.
    crm_update_deal | Update the stage of a sales deal.
    ticket_create | Open a support ticket.
    ticket_search | Search support tickets by keyword.
    expense_report_submit | Submit an expense report with receipts.
    inventory_stock_level | How many units of a product are in stock.
    order_status | Shipping status of a customer order.
    """,
    "misc": """
    unit_convert | Convert between units of measure such as miles and kilometers.
    random_number | Random integer between two bounds.
    password_generate | Generate a strong password.
    statistics_summary | Mean, median and standard deviation of a list of numbers.
    countdown_timer | Start a countdown timer for some minutes.
    news_headlines | Top news headlines for a country.
    recipe_search | Find recipes by ingredient.
    flight_status | Departure and arrival status of a flight.
    sports_scores | Latest scores of a sports league.
    """,
}


def decoys() -> list[Decoy]:
    """The 100 decoys, in a fixed order."""
    found = []
    for domain, table in _DECOYS.items():
        for line in table.strip().splitlines():
            name, description = (part.strip() for part in line.split("|"))
            found.append(Decoy(name, description, domain))
    assert len(found) == 100, f"{len(found)} decoys"
    return found


def stdlib_candidates(folder: Path = STDLIB_DIR) -> list[Candidate]:
    """The Tool specs of ``folder`` (``stdlib_tools/`` by default) as discovery candidates."""
    found = []
    for path in sorted(folder.glob("*.yaml")):
        doc: Any = yaml.safe_load(path.read_text("utf-8"))
        if not isinstance(doc, dict) or doc.get("kind") != "Tool":
            continue
        name = str(doc["metadata"]["name"])
        spec = doc.get("spec") or {}
        description = " ".join(str(spec.get("description") or "").split())
        labels = {str(k): str(v) for k, v in (doc["metadata"].get("labels") or {}).items()}
        text = search_text(name, description)
        found.append(Candidate(name=name, description=description, labels=labels, text=text))
    return found


def candidates(folder: Path = STDLIB_DIR) -> list[Candidate]:
    """The stdlib tools and the decoys."""
    decoy_candidates = [
        Candidate(
            name=d.name,
            description=d.description,
            labels={"category": d.domain},
            text=search_text(d.name, d.description),
        )
        for d in decoys()
    ]
    return stdlib_candidates(folder) + decoy_candidates


@dataclass(frozen=True, slots=True)
class Report:
    cases: int
    top1: float
    top3: float
    #: (query, expected, the top 3 found) of every case whose expected tool was not first
    misses: tuple[tuple[str, str, tuple[str, ...]], ...]


def evaluate(index: ToolIndex, cases: Sequence[tuple[str, str]] = CASES + HELD_OUT) -> Report:
    """Top-1 and top-3 accuracy of ``index`` over ``cases``."""
    top1 = top3 = 0
    misses = []
    for query, expected in cases:
        found = tuple(h.name for h in index.search(query, 3))
        top1 += found[:1] == (expected,)
        top3 += expected in found
        if found[:1] != (expected,):
            misses.append((query, expected, found))
    n = len(cases)
    return Report(cases=n, top1=top1 / n, top3=top3 / n, misses=tuple(misses))


def measure(embedder: Embedder, folder: Path = STDLIB_DIR) -> dict[str, Report]:
    """The embedder's reports over the tuning cases, the held-out ones and both."""
    index = ToolIndex.build(candidates(folder), embedder)
    reports = {"tuning": evaluate(index, CASES), "all": evaluate(index, CASES + HELD_OUT)}
    if HELD_OUT:
        reports["held_out"] = evaluate(index, HELD_OUT)
    return reports
