#!/usr/bin/python3
"""Drive moss-gui through AT-SPI, as a person with a screen reader would: find controls by their
accessible names, press them, read labels. Run inside its own session bus (dbus-run-session) on
a headless X display; the system bus is the test's private one (DBUS_SYSTEM_BUS_ADDRESS).

    drive.py SCENARIO GUI_BINARY SCREENSHOT_DIR

Scenarios: `admin` (check for updates, update, compare a state, roll back, visit every page),
`refused` (an update polkit refuses), `follow` (a transaction started elsewhere is running when
the window opens), `cancel` (the window cancels it), `idle` (mossd exits when idle under the
open window, and comes back), `settings` (change the update policy and the states to keep) and
`settings-refused` (the same changes, refused: the page shows the daemon's values again),
`packages` (remove one, install one), `health` (verify names a broken file, repair),
`repositories` (disable and enable), `repository-add` (the form, typed) and `prune` (prune
states, remove one). Prints `key: value` lines the Rust test asserts on; exits
non-zero with a message when a step fails.
"""
import os
import subprocess
import sys
import time

import pyatspi

SCENARIO, GUI, SHOTS = sys.argv[1], sys.argv[2], sys.argv[3]
TIMEOUT = 60


def say(key, value):
    print(f"{key}: {value}", flush=True)


def fail(message):
    say("error", message)
    try:
        shot("failure")
    except Exception:  # noqa: BLE001 - the screenshot is only a help
        pass
    sys.exit(1)


def walk(node, depth=0):
    """Every accessible below node (breadth-first is not needed: the tree is small)."""
    if node is None or depth > 60:
        return
    yield node
    try:
        count = node.childCount
    except Exception:  # noqa: BLE001 - nodes vanish while the window changes
        return
    for index in range(count):
        try:
            child = node.getChildAtIndex(index)
        except Exception:  # noqa: BLE001
            continue
        yield from walk(child, depth + 1)


def showing(node):
    """GTK 4.8 does not report SHOWING; VISIBLE is what it has. Pages the view stack hides are
    in the tree as well, so the names the driver looks for are unique in the window."""
    try:
        return node.getState().contains(pyatspi.STATE_VISIBLE)
    except Exception:  # noqa: BLE001
        return False


def role(node):
    try:
        return node.getRoleName()
    except Exception:  # noqa: BLE001
        return ""


def name(node):
    """The accessible name; GTK 4.8 names a mnemonic button by its label property and its
    child's text ("_Roll Back Roll Back"): that is read as the text once."""
    try:
        text = node.name or ""
    except Exception:  # noqa: BLE001
        return ""
    plain = text.replace("_", "")
    half = plain[: len(plain) // 2]
    return half if plain == f"{half} {half}" else text


def find_app():
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        desktop = pyatspi.Registry.getDesktop(0)
        for index in range(desktop.childCount):
            app = desktop.getChildAtIndex(index)
            if app is not None and name(app) == "moss-gui":
                return app
        time.sleep(0.1)
    fail("moss-gui did not appear on the accessibility bus")


def wait(predicate, what, timeout=TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    fail(f"timed out waiting for {what}")


def find(app, roles, text, exact=True):
    """A showing node of one of `roles` whose name is (or contains) text."""
    for node in walk(app):
        if role(node) in roles and showing(node):
            label = name(node)
            if (label == text) if exact else (text in label):
                return node
    return None


def button(app, text):
    return wait(lambda: find(app, ("push button", "toggle button"), text), f"button {text!r}")


def press(app, text):
    node = button(app, text)
    node.queryAction().doAction(0)
    say("pressed", text)


def label(app, text, exact=False, timeout=TIMEOUT):
    return wait(lambda: find(app, ("label",), text, exact), f"label {text!r}", timeout)


def labels(app):
    return [name(node) for node in walk(app) if role(node) == "label" and showing(node)]


def page(app, title):
    """Switch pages with the view switcher (its buttons are toggle buttons named by page)."""
    node = wait(
        lambda: find(app, ("page tab", "toggle button", "radio button"), title),
        f"page switcher {title!r}",
    )
    node.queryAction().doAction(0)
    time.sleep(0.5)


APP = None


def shot(file_name):
    """A screenshot of the window: the screen, trimmed of the black root around it (GTK 4 on
    X11 does not report screen coordinates to AT-SPI)."""
    time.sleep(0.6)  # let animations (revealers, transitions) settle
    path = os.path.join(SHOTS, f"{file_name}.png")
    command = ["import", "-silent", "-window", "root", "-trim", "+repage", path]
    subprocess.run(command, check=True)
    say("screenshot", path)


def selected_tab(app):
    for node in walk(app):
        if role(node) == "page tab" and node.getState().contains(pyatspi.STATE_SELECTED):
            return name(node)
    return None


def alt(keycode):
    """Alt+key through XTest (at-spi2-registryd), as a person would type it. Keycodes are those
    of Xvfb's default keymap: 64 Alt_L, 10 "1", 11 "2"."""
    registry = pyatspi.Registry
    registry.generateKeyboardEvent(64, None, pyatspi.KEY_PRESS)
    registry.generateKeyboardEvent(keycode, None, pyatspi.KEY_PRESSRELEASE)
    registry.generateKeyboardEvent(64, None, pyatspi.KEY_RELEASE)


def admin():
    button(APP, "Check for Updates")
    say("window", "usable")
    press(APP, "Check for Updates")
    label(APP, "1 update available")
    label(APP, "tool 1-1 → 1-2")
    shot("overview")
    press(APP, "Update")
    done = label(APP, "Done", exact=False, timeout=120)
    say("update", name(done))
    label(APP, "Up to date")
    shot("overview-updated")

    page(APP, "States")
    press(APP, "Show state 2")
    label(APP, "tool 1-2 → 1-1")
    say("diff", " | ".join(text for text in labels(APP) if "→" in text or "downgraded" in text))
    shot("states")
    press(APP, "Roll Back to This State")
    dialog_button = wait(
        lambda: find(APP, ("push button",), "Roll Back"), "the confirmation dialog"
    )
    dialog_button.queryAction().doAction(0)
    say("pressed", "Roll Back")
    label(APP, "Rolling back", exact=True)
    wait(lambda: any(text.startswith("Done") for text in labels(APP)), "the rollback to finish", 120)
    say("rollback", "done")
    time.sleep(1)

    page(APP, "Packages")
    label(APP, "bash-completion", exact=True)
    packages = wait(lambda: find(APP, ("list",), "Packages"), "the package list")
    packages.querySelection().selectChild(0)
    label(APP, "Programmable completion functions for bash", exact=True)
    label(APP, "Dependencies", exact=True)
    shot("packages")
    page(APP, "Repositories")
    label(APP, "examples", exact=True)
    shot("repositories")
    page(APP, "Health")
    press(APP, "Verify")
    problems = label(APP, "No problems found", timeout=120)
    say("verify", name(problems))
    shot("health")
    page(APP, "Settings")
    label(APP, "Update policy", exact=True)
    shot("settings")

    alt(11)
    wait(lambda: selected_tab(APP) == "States", "Alt+2 to show States", 10)
    alt(10)
    wait(lambda: selected_tab(APP) == "Overview", "Alt+1 to show the Overview", 10)
    say("keyboard", "Alt+2 States, Alt+1 Overview")


def refused():
    button(APP, "Update")
    say("window", "usable")
    press(APP, "Update")
    refusal = label(APP, "Not allowed", timeout=60)
    say("refusal", name(refusal))
    detail = label(APP, "You are not allowed", timeout=10)
    say("refusal-detail", name(detail))
    shot("refused")


def follow():
    """A transaction someone else started is running when the window opens: its events are
    replayed into the activity panel, then followed live to the end."""
    title = label(APP, "Installing", exact=True, timeout=30)
    say("followed", name(title))
    say("headline", " | ".join(text for text in labels(APP) if text and text != "GtkLabel")[:400])
    shot("follow")
    done = label(APP, "Done", exact=False, timeout=60)
    say("followed-outcome", name(done))


def cancel():
    """Cancel a running transaction from the window, before its point of no return."""
    label(APP, "Installing", exact=True, timeout=30)
    press(APP, "Cancel")
    outcome = label(APP, "Cancelled", exact=False, timeout=60)
    say("cancelled", name(outcome))


def idle():
    """mossd exits when idle although the window is open (the window does not poll), and the
    next change activates it again on the bus. Each press is checked to have reached mossd and
    to have run to the end in its history: the panel of the first check still reads "Done"
    when the second is pressed, so the label alone proves nothing the second time."""
    button(APP, "Check for Updates")
    say("window", "usable")

    def gone():
        status = subprocess.run(
            ["busctl", "--system", "status", "com.serpentos.Moss1"], capture_output=True
        )
        return status.returncode != 0

    def refreshes():
        """Refreshes that ended, from mossd's history (the call activates mossd: asked only
        after a press, which activates it anyway)."""
        history = subprocess.run(
            ["busctl", "--system", "call", "com.serpentos.Moss1", "/com/serpentos/Moss1",
             "com.serpentos.Moss1", "History"], capture_output=True, text=True
        )
        return history.stdout.count('"Refresh" ')

    for count, run in enumerate(("before-idle-exit", "after-activation"), start=1):
        wait(gone, "mossd to exit when idle", 30)
        say("idle-exit", "yes")
        press(APP, "Check for Updates")
        wait(lambda: refreshes() >= count, f"{run}: refresh {count} in mossd's history", 60)
        done = label(APP, "Done", exact=False, timeout=60)
        say(run, name(done))
    wait(gone, "mossd to exit when idle after the second check", 60)


def dump(app):
    """The showing controls with their roles, for a failure message."""
    return "; ".join(
        f"{role(node)}={name(node)!r}" for node in walk(app) if showing(node) and name(node)
    )[:3000]


def choose_policy(app, choice):
    choose(app, "Update policy", choice, 4)


def choose(app, control, choice, choices):
    """Pick an entry of a combo row or drop-down as a keyboard user would: Tab until it has the
    focus (GTK 4.8 offers no AT-SPI action or focus grab for it), Return opens its popover, the
    arrow keys move to the choice, Return picks it."""
    row = wait(lambda: find(app, ("combo box",), control), f"the {control!r} control")
    for _ in range(40):
        # A drop-down's focus is on the button inside it.
        if any(part.getState().contains(pyatspi.STATE_FOCUSED) for part in walk(row)):
            break
        pyatspi.Registry.generateKeyboardEvent(23, None, pyatspi.KEY_PRESSRELEASE)  # Tab
        time.sleep(0.15)
    else:
        fail(f"Tab never reached {control!r}")
    pyatspi.Registry.generateKeyboardEvent(36, None, pyatspi.KEY_PRESSRELEASE)  # Return

    def choice_list():
        for node in walk(app):
            # The popover's list itself (one item a choice), not a container holding it.
            if role(node) in ("list", "list box", "tree table") and showing(node) \
                    and node.childCount == choices:
                for index in range(node.childCount):
                    child = node.getChildAtIndex(index)
                    if any(name(part) == choice for part in walk(child)):
                        return node, index
        return None

    found = wait(choice_list, f"the choice {choice!r}", 10)
    if not found:
        fail(dump(app))
    listing, index = found
    # Selecting through AT-SPI changes the popover list's own selection, not the row's: move
    # the focus with the arrow keys to the choice (reading which item has it) and press Return.

    def focused():
        for position in range(listing.childCount):
            item = listing.getChildAtIndex(position)
            if any(part.getState().contains(pyatspi.STATE_FOCUSED) for part in walk(item)):
                return position
        return None

    for _ in range(12):
        time.sleep(0.3)
        at = focused()
        say("policy-focus", at)
        if at == index:
            break
        key = 0xFF52 if at is not None and at > index else 0xFF54  # the keysyms Up, Down
        pyatspi.Registry.generateKeyboardEvent(key, None, pyatspi.KEY_SYM)
    else:
        fail(f"the arrow keys never reached {choice!r}")
    pyatspi.Registry.generateKeyboardEvent(0xFF0D, None, pyatspi.KEY_SYM)  # Return
    say("chose", choice)


def set_keep_states(app, count):
    spin = wait(lambda: find(app, ("spin button",), "States to keep"), "the states to keep")
    spin.queryValue().currentValue = float(count)
    say("keep-states-set", count)


def settings():
    button(APP, "Check for Updates")
    page(APP, "Settings")
    label(APP, "Update policy", exact=True)
    set_keep_states(APP, 2)
    caption = label(APP, "beyond the newest 2", timeout=30)
    say("keep-states", name(caption))
    choose_policy(APP, "Download updates")
    toast = label(APP, "Background updates: Download updates", timeout=30)
    say("policy", name(toast))
    time.sleep(1)
    shot("settings-keep-states")


def settings_refused():
    button(APP, "Check for Updates")
    page(APP, "Settings")
    label(APP, "Update policy", exact=True)
    set_keep_states(APP, 4)
    label(APP, "Changing the states to keep", exact=True, timeout=60)
    refusal = label(APP, "Not allowed", timeout=10)
    say("keep-states-refusal", name(refusal))
    caption = label(APP, "Every state is kept", timeout=30)
    say("keep-states", name(caption))
    choose_policy(APP, "Install updates automatically")
    label(APP, "Changing background updates", exact=True, timeout=60)
    refusal = label(APP, "Not allowed", timeout=10)
    say("policy-refusal", name(refusal))
    time.sleep(1)
    shot("settings-refused")


def headline(app, text, timeout=120):
    """Wait for the activity panel's outcome containing text (the daemon's message, which names
    the new state, so that an earlier "Done" is not taken for this one)."""
    found = label(app, text, timeout=timeout)
    say("outcome", name(found))
    return found


def select_row(app, list_name, text):
    """Select the row of a list view (by its accessible name) that shows text."""
    listing = wait(lambda: find(app, ("list",), list_name), f"the list {list_name!r}")

    def position():
        for index in range(listing.childCount):
            if any(name(part) == text for part in walk(listing.getChildAtIndex(index))):
                return index + 1
        return None

    index = wait(position, f"{text!r} in {list_name!r}", 30) - 1
    listing.querySelection().selectChild(index)


def dialog_button(app, text):
    """A button of the newest top-level window (a confirmation dialog), where the page behind
    it may have a button of the same name."""
    def newest():
        for index in reversed(range(app.childCount)):
            window = app.getChildAtIndex(index)
            found = find(window, ("push button",), text)
            if found is not None:
                return found
        return None

    return wait(newest, f"the dialog's {text!r}")


def packages():
    button(APP, "Check for Updates")
    page(APP, "Packages")
    select_row(APP, "Packages", "bash-completion")
    label(APP, "Programmable completion functions for bash", exact=True)
    press(APP, "Remove")
    headline(APP, "State 2 is active")
    say("removed", "bash-completion")
    choose(APP, "Which packages", "Available", 2)
    select_row(APP, "Packages", "pineapple")
    press(APP, "Install")
    headline(APP, "State 3 is active")
    say("installed", "pineapple")
    shot("packages-installed")


def health():
    button(APP, "Check for Updates")
    page(APP, "Health")
    press(APP, "Verify")
    label(APP, "share/bash-completion", timeout=120)
    say("problem", " | ".join(t for t in labels(APP) if "bash-completion" in t or "issing" in t))
    shot("health-problem")
    press(APP, "Repair")
    headline(APP, "Repaired")
    press(APP, "Verify")
    fixed = label(APP, "No problems found", timeout=120)
    say("after-repair", name(fixed))


def repositories():
    button(APP, "Check for Updates")
    page(APP, "Repositories")
    switch = wait(lambda: find(APP, ("switch", "toggle button", "check box"), "Enable examples"),
                  "the examples switch")
    switch.queryAction().doAction(0)
    headline(APP, "disabled", timeout=60)
    listed = subprocess.run(
        ["busctl", "--system", "call", "com.serpentos.Moss1", "/com/serpentos/Moss1",
         "com.serpentos.Moss1", "ListRepositories"], capture_output=True, text=True)
    say("while-disabled", " ".join(listed.stdout.split()))
    switch = wait(lambda: find(APP, ("switch", "toggle button", "check box"), "Enable examples"),
                  "the examples switch again")
    switch.queryAction().doAction(0)
    headline(APP, "enabled", timeout=60)


def focus(app, roles, control):
    """Tab until the control (or a part of it) has the keyboard focus."""
    node = wait(lambda: find(app, roles, control), f"the {control!r} control")
    for _ in range(60):
        if any(part.getState().contains(pyatspi.STATE_FOCUSED) for part in walk(node)):
            return node
        pyatspi.Registry.generateKeyboardEvent(23, None, pyatspi.KEY_PRESSRELEASE)  # Tab
        time.sleep(0.15)
    focused = [f"{role(part)}={name(part)!r}" for part in walk(app)
               if part.getState().contains(pyatspi.STATE_FOCUSED)]
    fail(f"Tab never reached {control!r} ({role(node)}); focused: {focused}")


def tab():
    pyatspi.Registry.generateKeyboardEvent(23, None, pyatspi.KEY_PRESSRELEASE)  # Tab
    time.sleep(0.2)


def type_text(text):
    """Type text where the focus is, through XTest, as a person would (GTK 4.8 offers no AT-SPI
    editable text)."""
    pyatspi.Registry.generateKeyboardEvent(0, text, pyatspi.KEY_STRING)
    time.sleep(0.3)


def repository_add():
    button(APP, "Check for Updates")
    page(APP, "Repositories")
    label(APP, "examples", exact=True)
    # The same index as `examples`, under another name: the address mossd lists for it.
    listed = subprocess.run(
        ["busctl", "--system", "call", "com.serpentos.Moss1", "/com/serpentos/Moss1",
         "com.serpentos.Moss1", "ListRepositories"], capture_output=True, text=True)
    uri = next(word.strip('"') for word in listed.stdout.split() if word.startswith('"file://'))
    # GTK 4.8 does not report the focus of an entry row's text: Tab to the button before the
    # form (it does report focus), then on into Name and the index address.
    focus(APP, ("push button",), "Remove examples")
    tab()
    type_text("extra")
    tab()
    type_text(uri)
    switch = wait(lambda: find(APP, ("switch", "toggle button", "check box"),
                               "Allow without a signature"), "the unsigned switch")
    switch.queryAction().doAction(0)
    press(APP, "Add Repository")
    headline(APP, "extra added", timeout=60)
    label(APP, "extra", exact=True, timeout=30)
    shot("repository-added")


def prune():
    button(APP, "Check for Updates")
    page(APP, "States")
    press(APP, "Prune…")
    keep = wait(lambda: find(APP, ("spin button",), "Number of states to keep"),
                "the number of states to keep")
    keep.queryValue().currentValue = 1.0
    dialog_button(APP, "Prune").queryAction().doAction(0)
    headline(APP, "emoved", timeout=60)
    wait(lambda: find(APP, ("push button",), "Show state 1") is None, "state 1 to go", 60)
    say("pruned", "yes")
    press(APP, "Show state 3")
    press(APP, "Remove")
    time.sleep(0.5)
    dialog_button(APP, "Remove").queryAction().doAction(0)
    wait(lambda: find(APP, ("push button",), "Show state 3") is None, "state 3 to go", 60)
    say("removed-state", "3")
    shot("states-pruned")


def main():
    global APP
    os.makedirs(SHOTS, exist_ok=True)
    # The window's own account (changes made, transactions followed, mossd leaving) goes to
    # the output as gui-stderr lines, for a failing step.
    environment = dict(os.environ, MOSS_GUI_REPORT_STARTUP="1")
    environment.setdefault("MOSS_GUI_LOG", "warn,moss_gui=debug")
    started = time.time()
    gui = subprocess.Popen([GUI], env=environment, stderr=subprocess.PIPE, text=True)
    try:
        APP = find_app()
        {"admin": admin, "refused": refused, "follow": follow, "idle": idle,
         "cancel": cancel, "settings": settings,
         "settings-refused": settings_refused, "packages": packages, "health": health,
         "repositories": repositories, "prune": prune,
         "repository-add": repository_add}[SCENARIO]()
        say("elapsed", f"{time.time() - started:.1f} s")
    finally:
        gui.terminate()
        try:
            _, errors = gui.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            gui.kill()
            _, errors = gui.communicate()
        for line in errors.splitlines():
            say("gui-stderr", line)


main()
