// Portal: copy-to-clipboard buttons, and the confirmation destructive console actions ask for (below).
// Without JavaScript the copy buttons stay hidden and the text stays selectable.
// Every text it shows comes from the page (data attributes rendered by the template in the customer's language).
(function () {
  var status = document.getElementById("copy-status");
  function text(name, fallback) {
    return (status && status.getAttribute(name)) || fallback;
  }
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    if (!navigator.clipboard) { return; }
    button.hidden = false;
    var label = button.firstChild.nodeValue;
    button.addEventListener("click", function () {
      var target = document.getElementById(button.getAttribute("data-copy"));
      if (!target) { return; }
      navigator.clipboard.writeText((target.value || target.textContent).trim()).then(function () {
        button.firstChild.nodeValue = text("data-copied", "Copied");
        if (status) { status.textContent = text("data-copied-status", "Copied to the clipboard."); }
        setTimeout(function () { button.firstChild.nodeValue = label; }, 2000);
      }, function () {
        if (status) { status.textContent = text("data-copy-failed", "Copy failed; select the text and copy it."); }
      });
    });
  });
})();

// Destructive actions (forms with data-confirm) ask first, in a modal dialog: the question is the form's
// data-confirm, the confirming button repeats the form's own button, Cancel (or Escape) leaves everything as it was.
// The dialog's markup and its Cancel label come from the page (<template id="confirm-dialog">). Without JavaScript
// the button acts at once, as a plain form.
(function () {
  var source = document.getElementById("confirm-dialog");
  var forms = document.querySelectorAll("form[data-confirm]");
  if (!source || !forms.length || typeof HTMLDialogElement !== "function") { return; }
  var dialog = source.content.firstElementChild.cloneNode(true);
  document.body.appendChild(dialog);
  var question = dialog.querySelector("p");
  var buttons = dialog.querySelectorAll("button");
  var cancel = buttons[0];
  var proceed = buttons[1];
  var pending = null;
  cancel.addEventListener("click", function () { dialog.close(""); });
  proceed.addEventListener("click", function () { dialog.close("confirm"); });
  dialog.addEventListener("close", function () {
    var asked = pending;
    pending = null;
    if (asked && dialog.returnValue === "confirm") {
      asked.form.setAttribute("data-confirmed", "");
      asked.form.requestSubmit(asked.submitter);
    }
  });
  forms.forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.hasAttribute("data-confirmed")) {
        form.removeAttribute("data-confirmed");
        return;
      }
      event.preventDefault();
      pending = { form: form, submitter: event.submitter || null };
      question.textContent = form.getAttribute("data-confirm");
      proceed.textContent = pending.submitter ? pending.submitter.textContent.trim() : question.textContent;
      dialog.returnValue = "";
      dialog.showModal();
      cancel.focus();
    });
  });
})();
