// latchkey's one script, and the pages work without it: it turns on the
// "Copy" buttons next to secrets shown once (the value stays selectable
// by hand), and asks before a form marked data-confirm is sent.
for (const button of document.querySelectorAll('button[data-copy]')) {
  const field = document.getElementById(button.dataset.copy);
  if (!field) continue;
  button.hidden = false;
  // The accessible name says what is copied ("Copy the secret"); it keeps
  // the visible word in it while the button reads "Copied".
  const label = button.getAttribute('aria-label');
  const say = (word) => {
    button.textContent = word;
    if (label) button.setAttribute('aria-label', label.replace(/^Copy\b/, word));
  };
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(field.value);
    } catch {
      field.select();
      document.execCommand('copy');
    }
    say('Copied');
    setTimeout(() => say('Copy'), 2000);
  });
}
for (const form of document.querySelectorAll('form[data-confirm]')) {
  form.addEventListener('submit', (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}
