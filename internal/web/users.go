package web

// The users page, for owners (users:write): the list of dashboard users,
// adding one, changing a role, disabling or enabling, and deleting after a
// confirmation page. Every change goes through the user service, which
// checks the permission again, keeps at least one active owner, ends the
// sessions of a user whose access changes, and audits the change.

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokend/tokend"
	"github.com/tokend/tokend/internal/manage"
)

func (s *Server) userRoutes() {
	s.handle("GET /users", tokend.PermUsersWrite, s.usersPage)
	s.handle("POST /users", tokend.PermUsersWrite, s.userCreate)
	s.handle("POST /users/{id}/role", tokend.PermUsersWrite, s.userRole)
	s.handle("GET /users/{id}/disable", tokend.PermUsersWrite, s.userDisablePage)
	s.handle("POST /users/{id}/disable", tokend.PermUsersWrite, s.userDisabled(true))
	s.handle("POST /users/{id}/enable", tokend.PermUsersWrite, s.userDisabled(false))
	s.handle("GET /users/{id}/delete", tokend.PermUsersWrite, s.userDeletePage)
	s.handle("POST /users/{id}/delete", tokend.PermUsersWrite, s.userDelete)
}

// roleChoice is a role as the forms offer it.
type roleChoice struct {
	Role tokend.Role
	Text string
}

var roleChoices = []roleChoice{
	{tokend.RoleOwner, "Owner: everything, including users"},
	{tokend.RoleAdmin, "Admin: manages applications and tokens, reads the audit log"},
	{tokend.RoleViewer, "Viewer: sees applications, tokens and the audit log, changes nothing"},
}

type usersData struct {
	Now   time.Time
	Users []tokend.User
	Self  string // the signed-in user's id
	Roles []roleChoice
	New   newUserForm
	// Confirm is the action on a user the page asks to confirm: disable
	// or delete.
	Confirm *userConfirm
}

// userConfirm is the confirmation of a disable or delete: its own page,
// or (lifted by the page's script) a dialog on the users page.
type userConfirm struct {
	User   tokend.User
	Action string // disable or delete
}

type newUserForm struct {
	Name, Email string
	Role        tokend.Role
	authForm
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request) {
	s.showUsers(w, r, http.StatusOK, newUserForm{Role: tokend.RoleViewer})
}

func (s *Server) showUsers(w http.ResponseWriter, r *http.Request, status int, form newUserForm) {
	users, err := s.svc.Users(r.Context(), s.actor(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	me, _ := currentUser(r.Context())
	s.render(w, r, status, "users.html", &page{Title: "Users", Nav: "users",
		Data: usersData{Now: s.now().UTC(), Users: users, Self: me.ID, Roles: roleChoices, New: form}})
}

func (s *Server) userCreate(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	in := manage.UserInput{
		Name:     strings.TrimSpace(f.Get("name")),
		Email:    strings.TrimSpace(f.Get("email")),
		Role:     tokend.Role(f.Get("role")),
		Password: f.Get("password"),
	}
	u, err := s.svc.CreateUser(r.Context(), s.actor(r), in)
	if err != nil {
		fe := s.formErrorOf(r, err, "name", "email", "role", "password")
		if fe.Status >= 500 || fe.Status == http.StatusForbidden {
			s.fail(w, r, err)
			return
		}
		s.showUsers(w, r, fe.Status, newUserForm{Name: in.Name, Email: in.Email, Role: in.Role, authForm: authForm{Errors: fe}})
		return
	}
	s.setFlash(w, "ok", "Added "+u.Email+" as "+string(u.Role)+". Give them their password by a safe channel.")
	http.Redirect(w, r, "/users", http.StatusSeeOther)
}

// formVersion reads the version a form was made from.
func formVersion(r *http.Request) (int64, bool) {
	v, err := strconv.ParseInt(r.PostForm.Get("version"), 10, 64)
	return v, err == nil && v > 0
}

// userChanged ends a user action: back to the list with a message.
func (s *Server) userChanged(w http.ResponseWriter, r *http.Request, err error, ok string) {
	if err != nil {
		if c := tokend.CodeOf(err); c == tokend.ECodeInternal || c == tokend.ECodeUnavailable ||
			c == tokend.ECodeForbidden || c == tokend.ECodeNotFound {
			s.fail(w, r, err)
			return
		}
		s.setFlash(w, "error", publicMessage(err))
	} else {
		s.setFlash(w, "ok", ok)
	}
	http.Redirect(w, r, "/users", http.StatusSeeOther)
}

// setUser applies patch to the user of the request's path. Role and
// status changes set a value rather than edit one, so they apply to the
// user as stored now (version 0: no version check): a sign-in, which
// records its time and so bumps the version, must not make the owner's
// page stale. The store still runs the last-owner rule inside the change's
// transaction.
func (s *Server) setUser(r *http.Request, patch manage.UserPatch) (tokend.User, error) {
	return s.svc.UpdateUser(r.Context(), s.actor(r), r.PathValue("id"), patch, 0)
}

func (s *Server) userRole(w http.ResponseWriter, r *http.Request) {
	role := tokend.Role(r.PostForm.Get("role"))
	u, err := s.setUser(r, manage.UserPatch{Role: &role})
	s.userChanged(w, r, err, u.Email+" is now "+string(u.Role)+".")
}

func (s *Server) userDisabled(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.setUser(r, manage.UserPatch{Disabled: &disabled})
		msg := u.Email + " is enabled again."
		if disabled {
			msg = u.Email + " is disabled and signed out everywhere."
		}
		s.userChanged(w, r, err, msg)
	}
}

func (s *Server) userDeletePage(w http.ResponseWriter, r *http.Request) {
	u, err := s.svc.User(r.Context(), s.actor(r), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "users.html", &page{Title: "Delete " + u.Email, Nav: "users",
		Data: usersData{Confirm: &userConfirm{User: u, Action: "delete"}}})
}

func (s *Server) userDisablePage(w http.ResponseWriter, r *http.Request) {
	u, err := s.svc.User(r.Context(), s.actor(r), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "users.html", &page{Title: "Disable " + u.Email, Nav: "users",
		Data: usersData{Confirm: &userConfirm{User: u, Action: "disable"}}})
}

func (s *Server) userDelete(w http.ResponseWriter, r *http.Request) {
	version, ok := formVersion(r)
	if !ok {
		s.errorPage(w, r, http.StatusBadRequest, "The form has no valid version; reload the page and try again.")
		return
	}
	id := r.PathValue("id")
	u, err := s.svc.User(r.Context(), s.actor(r), id)
	if err == nil {
		err = s.svc.DeleteUser(r.Context(), s.actor(r), id, version)
	}
	s.userChanged(w, r, err, "Deleted "+u.Email+".")
}
