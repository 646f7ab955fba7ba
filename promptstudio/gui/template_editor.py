"""The prompt template editor: slots stand out as you type, and problems show beneath.

A template is plain text with the slots {instruction}, {demos} and {input}; the
demonstration format has {input} and {output}. The highlighter colours each real slot,
and marks anything that looks like a slot but is not one. Checking the text is the
engine's job (`PromptTemplate.problems`); this module only shows the result, the
problems that stop a run in red and the rest as advice.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QFont,
    QFontDatabase,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from promptstudio.llm.chat import messages_text
from promptstudio.templates import (
    DEMO_PLACES,
    DEMO_SLOTS,
    INSTRUCTION_PLACES,
    SLOTS,
    ChatPromptTemplate,
    PromptTemplate,
)

SLOT_COLOURS = {
    "instruction": QColor("#1d6fb8"),
    "demos": QColor("#7b3fb0"),
    "input": QColor("#1b7f4b"),
    "output": QColor("#b85d1d"),
}
PROBLEM_RED = "#b3261e"
ADVICE_AMBER = "#8a5a00"
INSTRUCTION_WORDS = {"system": "In a system message",
                     "user": "At the top of the user's message"}
DEMO_WORDS = {"turns": "As earlier turns of the conversation",
              "inline": "Written in the user's message, in the format above"}


class FinishingTextEdit(QPlainTextEdit):
    """A multi-line text box that says when the user is done with it, like a line edit.

    `editingFinished` fires when it loses focus after a change, so a project is saved once
    per edit rather than on every keystroke.
    """

    editingFinished = Signal()

    def __init__(self, lines: int = 3, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)
        self._lines = lines
        self.setFixedHeight(self._height_for(lines))

    def _height_for(self, lines: int) -> int:
        margins = self.contentsMargins()
        frame = margins.top() + margins.bottom() + 2 * int(self.document().documentMargin())
        return self.fontMetrics().lineSpacing() * lines + frame + 2

    def setFont(self, font: QFont) -> None:
        super().setFont(font)
        self.setFixedHeight(self._height_for(self._lines))

    def set_text_quietly(self, text: str) -> None:
        """Show `text` unless it is already shown; never counts as the user's edit."""
        if self.toPlainText() != text:
            self.blockSignals(True)
            self.setPlainText(text)
            self.blockSignals(False)
        self.document().setModified(False)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        if self.document().isModified():
            self.document().setModified(False)
            self.editingFinished.emit()


class SlotHighlighter(QSyntaxHighlighter):
    """Colours the known slots, and underlines brace markers that are not slots."""

    def __init__(self, document: QTextDocument, slots: Sequence[str]) -> None:
        super().__init__(document)
        self.slots = tuple(slots)
        self._unknown = QTextCharFormat()
        self._unknown.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        self._unknown.setUnderlineColor(QColor(ADVICE_AMBER))
        self._unknown.setForeground(QColor(ADVICE_AMBER))

    def slot_format(self, name: str) -> QTextCharFormat:
        colour = SLOT_COLOURS.get(name, QColor("#1d6fb8"))
        fmt = QTextCharFormat()
        fmt.setForeground(colour)
        fmt.setFontWeight(QFont.Weight.Bold)
        background = QColor(colour)
        background.setAlpha(28)
        fmt.setBackground(background)
        return fmt

    def highlightBlock(self, text: str) -> None:
        for start, end, name in PromptTemplate(text).slot_spans():
            fmt = self.slot_format(name) if name in self.slots else self._unknown
            self.setFormat(start, end - start, fmt)


class TemplateEditor(QWidget):
    """The template and the demonstration format, highlighted and checked as they change."""

    editingFinished = Signal()  # either text was changed and left
    problemsChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.template_edit = FinishingTextEdit(lines=5)
        self.template_edit.setObjectName("templateEdit")
        self.template_edit.setFont(mono)
        self.template_edit.setPlaceholderText("Instruction: {instruction}\n\n{demos}Input: "
                                              "{input}\nOutput:")
        self.demo_edit = FinishingTextEdit(lines=4)
        self.demo_edit.setObjectName("demoFormatEdit")
        self.demo_edit.setFont(mono)
        self.template_highlighter = SlotHighlighter(self.template_edit.document(), SLOTS)
        self.demo_highlighter = SlotHighlighter(self.demo_edit.document(), DEMO_SLOTS)

        self.problems_label = QLabel()
        self.problems_label.setObjectName("templateProblems")
        self.problems_label.setWordWrap(True)
        self.problems_label.setTextFormat(Qt.TextFormat.RichText)
        self.problems_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse)

        slots_help = QLabel(
            f"{_chip('instruction')} becomes the instruction being tuned, "
            f"{_chip('demos')} a few worked examples, and {_chip('input')} each "
            "example's input, which must come last.")
        slots_help.setWordWrap(True)
        slots_help.setTextFormat(Qt.TextFormat.RichText)
        demo_help = QLabel(f"Each worked example is written like this, with {_chip('input')} "
                           f"and {_chip('output')}:")
        demo_help.setWordWrap(True)
        demo_help.setTextFormat(Qt.TextFormat.RichText)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.template_edit)
        layout.addWidget(slots_help)
        layout.addSpacing(4)
        layout.addWidget(demo_help)
        layout.addWidget(self.demo_edit)
        layout.addWidget(self.problems_label)

        self._note = ""
        for edit in (self.template_edit, self.demo_edit):
            edit.textChanged.connect(self._check)
            edit.editingFinished.connect(self.editingFinished)
        self._check()

    def template(self) -> PromptTemplate:
        return PromptTemplate(self.template_edit.toPlainText(), self.demo_edit.toPlainText())

    def set_template(self, template: PromptTemplate) -> None:
        self.template_edit.set_text_quietly(template.text)
        self.demo_edit.set_text_quietly(template.demo_format)
        self._check()

    def fatal_problems(self) -> list[str]:
        return self.template().fatal_problems()

    def show_note(self, text: str) -> None:
        """An extra line under the problems, such as why the template was not saved."""
        self._note = text
        self._check()

    def _check(self) -> None:
        template = self.template()
        fatal = template.fatal_problems()
        advice = [p for p in template.problems() if p not in fatal]
        lines = [f'<p style="color:{PROBLEM_RED}; margin:0 0 4px 0;">✖ {_escape(p)}</p>'
                 for p in fatal]
        lines += [f'<p style="color:{ADVICE_AMBER}; margin:0 0 4px 0;">⚠ {_escape(p)}</p>'
                  for p in advice]
        if self._note:
            lines.append(f'<p style="color:{PROBLEM_RED}; margin:0;"><b>{_escape(self._note)}'
                         '</b></p>')
        self.problems_label.setText("".join(lines))
        self.problems_label.setVisible(bool(lines))
        self.problemsChanged.emit()


def _chip(name: str) -> str:
    colour = SLOT_COLOURS[name].name()
    return f'<b style="color:{colour}; font-family:monospace;">{{{name}}}</b>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ChatPlacementEditor(QWidget):
    """For a chat model: where the instruction and the demonstrations go in its messages,
    and the messages an example becomes, as the model will get them."""

    placementChosen = Signal(str, str)  # instruction place, demonstration place

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.instruction_place = QComboBox()
        self.instruction_place.setObjectName("instructionPlace")
        for value in INSTRUCTION_PLACES:
            self.instruction_place.addItem(INSTRUCTION_WORDS[value], value)
        self.demo_place = QComboBox()
        self.demo_place.setObjectName("demoPlace")
        for value in DEMO_PLACES:
            self.demo_place.addItem(DEMO_WORDS[value], value)
        for box in (self.instruction_place, self.demo_place):
            box.activated.connect(lambda _: self.placementChosen.emit(
                self.instruction_place.currentData(), self.demo_place.currentData()))
        self.preview = QLabel()
        self.preview.setObjectName("chatPreview")
        self.preview.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.preview.setWordWrap(True)
        self.preview.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("The instruction:", self.instruction_place)
        form.addRow("Worked examples:", self.demo_place)
        form.addRow("An example becomes:", self.preview)

    def set_placement(self, instruction_place: str, demo_place: str,
                      template: ChatPromptTemplate | None) -> None:
        """Show the stored choice and, given the model's template, the messages it makes."""
        for box, value in ((self.instruction_place, instruction_place),
                           (self.demo_place, demo_place)):
            box.setCurrentIndex(max(0, box.findData(value)))
        if template is None:
            self.preview.setText("(the model's chat template cannot be read now)")
            return
        messages = template.messages("{instruction}", [("{demo input}", "{demo output}")],
                                     "{input}")
        self.preview.setText(messages_text(messages))
