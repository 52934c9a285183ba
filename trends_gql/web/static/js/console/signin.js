// The console's sign-in form: the `login` mutation, a wrong password and a lock-out shown by it.
import { request } from "../graphql.js";
import { duration, explain, say } from "./ui.js";

const LOGIN = `mutation SignIn($email: String!, $password: String!) {
  login(email: $email, password: $password) { id email isStaff }
}`;

const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

function refusal(error) {
  const extensions = error.errors?.[0]?.extensions ?? {};
  if (error.code === "UNAUTHENTICATED") {
    return "Wrong email or password. Check both and try again.";
  }
  if (error.code === "TOO_MANY_REQUESTS" && extensions.retryAfter) {
    const until = new Date(Date.now() + extensions.retryAfter * 1000);
    return (
      `Too many failed sign-ins: signing in is locked for ${duration(extensions.retryAfter)} ` +
      `(until ${clock.format(until)}). Wait, then try again.`
    );
  }
  return explain(error);
}

/**
 * Set up the form in `section`; `onSignedIn(user)` runs after a login. Returns `show(notice)`
 * and `hide()`.
 */
export function mountSignIn(section, { onSignedIn }) {
  const form = section.querySelector("#signin-form");
  const email = form.elements.email;
  const password = form.elements.password;
  const error = section.querySelector("#signin-error");
  const notice = section.querySelector("#signin-notice");
  const button = form.querySelector('button[type="submit"]');

  function showError(message) {
    say(error, message);
    for (const input of [email, password]) {
      if (message) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", error.id);
      } else {
        input.removeAttribute("aria-invalid");
        input.removeAttribute("aria-describedby");
      }
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!email.value.trim() || !password.value) {
      showError("Enter your email and your password.");
      (email.value.trim() ? password : email).focus();
      return;
    }
    button.disabled = true;
    showError("");
    say(notice, "");
    let user;
    try {
      user = (await request(LOGIN, { email: email.value, password: password.value })).login;
    } catch (failure) {
      showError(refusal(failure));
      password.select();
      password.focus();
      return;
    } finally {
      button.disabled = false;
    }
    password.value = "";
    onSignedIn(user);
  });

  return {
    show(message = "") {
      section.hidden = false;
      say(notice, message);
      showError("");
      email.focus();
    },
    hide() {
      section.hidden = true;
    },
  };
}
