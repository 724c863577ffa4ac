-- mod_p2http_push: deliver mod_cloud_notify's pushes to p2http over HTTP.
--
-- For the push services configured in p2http_push_jid, this module takes
-- over mod_cloud_notify's XEP-0357 publish: instead of sending the pubsub
-- publish to the push component over XMPP, it calls p2http's POST /v1/push
-- with the registration's node and secret, the host's domain, the app (the
-- local part of the push address: p2http_push_jid may list APP@component
-- addresses too), and whether the push is important. Neither the message body nor its sender is sent.
--
-- Answers (the table `problems` below, by p2http's problem type):
--   200                           the push was handed to FCM/APNs
--   404 not-found, 410 token-dead the registration is removed from the
--                                 user's push settings at once
--   400 invalid-request or service-not-configured, 403 forbidden
--                                 counted like a non-"wait" XMPP error
--                                 against push_max_errors
--   anything else (401, 429, 5xx, a proxy's page, no answer, timeout)
--                                 temporary: logged, never counted
-- A registration without a node or without a secret in its publish options
-- is left to mod_cloud_notify, which publishes it over XMPP as before.
--
-- Prosody 0.12 with mod_cloud_notify from prosody-modules, or Prosody 13.
-- See README.md beside this file. MIT licensed, as p2http.

local http = require "net.http";
local json = require "util.json";
local st = require "util.stanza";
local jid_join = require "util.jid".join;
local jid_split = require "util.jid".split;
local jid_prep = require "util.jid".prep;
local set = require "util.set";
local id = require "util.id";
local watchdog = require "util.watchdog";

local xmlns_push = "urn:xmpp:push:0";
local problem_prefix = "urn:p2http:problem:";

module:depends("cloud_notify");

-- Normalised, as the push addresses of registrations are compared
-- normalised: a client may enable push with Quicksy@push.example.org.
local push_jids = set.new();
for push_jid in module:get_option_set("p2http_push_jid", {}) do
	push_jids:add(jid_prep(push_jid) or push_jid);
end
local base_url = module:get_option_string("p2http_push_url", "http://127.0.0.1:8080");
local api_token = module:get_option_string("p2http_push_token");
local timeout = module:get_option_number("p2http_push_timeout", 20);
local max_push_errors = module:get_option_number("push_max_errors", 16);
local dummy_body = module:get_option_string("push_notification_important_body", "New Message!");

local push_url = base_url:gsub("/+$", "") .. "/v1/push";

-- mod_cloud_notify's error counters (module:shared("push_errors") there),
-- so that errors counted here and there add up and reset together.
local push_errors = module:shared("/" .. module.host .. "/cloud_notify/push_errors");

-- mod_cloud_notify's own storage, read (never written) to check that a
-- registration is still the one a push was sent for before removing it.
local push_store = module:open_store("cloud_notify");

local host_sessions = prosody.hosts[module.host].sessions;

if push_jids:empty() then
	module:log("warn", "p2http_push_jid is not set: every push goes over XMPP as before");
end

-- The secret from the publish options the client enabled push with.
local function publish_secret(push_info)
	if not push_info.options then return nil; end
	local ok, form = pcall(st.deserialize, push_info.options);
	if not ok or not form then return nil; end
	for _, field in ipairs(form.tags) do
		if field.name == "field" and field.attr.var == "secret" then
			for _, value in ipairs(field.tags) do
				if value.name == "value" then return value:get_text(); end
			end
		end
	end
	return nil;
end

-- The identifier mod_cloud_notify files the registration under.
local function identifier_of(push_info)
	return push_info.jid .. "<" .. (push_info.node or "");
end

-- Whether the user's stored registration is still the one pushed to.
local function still_registered(user, identifier, push_info)
	local stored, err = push_store:get(user);
	if err then
		module:log("warn", "Reading the push settings of %s: %s", user, tostring(err));
		return false;
	end
	local current = stored and stored[identifier];
	return current ~= nil and current.timestamp == push_info.timestamp;
end

-- Clears the registration from the user's live sessions, as
-- mod_cloud_notify does when it disables a registration after errors:
-- a hibernating session keeps its own copy of the push settings.
local function forget_in_sessions(user, identifier)
	local user_sessions = host_sessions[user];
	if not user_sessions then return; end
	for _, session in pairs(user_sessions.sessions) do
		if session.push_identifier == identifier then
			session.push_identifier = nil;
			session.push_settings = nil;
			session.first_hibernated_push = nil;
			if session.hibernating_watchdog and session.original_smacks_callback and session.original_smacks_timeout then
				-- restore the smacks watchdog mod_cloud_notify extended
				session.hibernating_watchdog:cancel();
				session.hibernating_watchdog = watchdog.new(session.original_smacks_timeout, session.original_smacks_callback);
			end
		end
	end
end

-- Removes the registration from the user's push settings through
-- mod_cloud_notify's own handler of XEP-0357 <disable/>, fired as if the
-- user had sent it: that is the only way to reach mod_cloud_notify's cache
-- of the settings, which it saves to storage itself.
local function remove_registration(user, push_info, why)
	local identifier = identifier_of(push_info);
	if not still_registered(user, identifier, push_info) then
		module:log("debug", "Registration '%s' of %s changed or went meanwhile; not removing it", identifier, user);
		return;
	end
	module:log("warn", "Disabling push notifications for identifier '%s' (%s)", identifier, why);
	local bare = jid_join(user, module.host);
	local request = st.iq({ type = "set", from = bare, to = bare, id = "p2http-" .. id.short() })
		:tag("disable", { xmlns = xmlns_push, jid = push_info.jid, node = push_info.node });
	local answer;
	local origin = {
		type = "c2s"; username = user; host = module.host;
		full_jid = bare; -- no resource: this is no real session
		send = function (reply) answer = reply; return true; end;
		log = function (level, ...) return module:log(level, ...); end;
	};
	local handled = module:fire_event("iq-set/self/" .. xmlns_push .. ":disable", { origin = origin, stanza = request });
	if not handled or not answer or answer.attr.type ~= "result" then
		module:log("error", "mod_cloud_notify did not remove registration '%s' of %s: %s", identifier, user,
			answer and tostring(answer) or "no answer");
		return;
	end
	forget_in_sessions(user, identifier);
end

-- Counts a permanent-looking error as mod_cloud_notify counts non-"wait"
-- error replies, and removes the registration at push_max_errors.
local function count_error(user, push_info, why)
	local identifier = identifier_of(push_info);
	local count = (push_errors[identifier] or 0) + 1;
	push_errors[identifier] = count;
	module:log("info", "Got error %s for identifier '%s': error count for this identifier is now at %d", why, identifier, count);
	if count >= max_push_errors then
		remove_registration(user, push_info, why);
	end
end

local function problem_type(body, response)
	local ctype = response and response.headers and response.headers["content-type"] or "";
	if not ctype:lower():match("^%s*application/problem%+json") then return nil; end
	local ok, doc = pcall(json.decode, body or "");
	if not ok or type(doc) ~= "table" or type(doc.type) ~= "string" then return nil; end
	if doc.type:sub(1, #problem_prefix) ~= problem_prefix then return nil; end
	return doc.type:sub(#problem_prefix + 1);
end

-- Every problem type of p2http's (openapi.yaml), with the status p2http
-- answers it with and what it does to the registration: "remove" it at
-- once, "count" it against push_max_errors as mod_cloud_notify counts a
-- non-"wait" error reply, or "keep" it (temporary). It follows the stanza
-- error p2xmpp answers the same failure with: cancel removes, modify or
-- auth counts, wait keeps. Only p2http's own documents count: an answer
-- whose type is not listed here with its status (a proxy's 404 page in
-- front of p2http) keeps the registration. contrib/prosody/problems_test.go
-- checks this table against openapi.yaml and p2xmpp's stanza errors.
local problems = {
	["invalid-request"]        = { 400, "count" };
	["service-not-configured"] = { 400, "count" };
	["unauthorized"]           = { 401, "keep" };
	["forbidden"]              = { 403, "count" };
	["not-found"]              = { 404, "remove" };
	["method-not-allowed"]     = { 405, "keep" };
	["token-dead"]             = { 410, "remove" };
	["body-too-large"]         = { 413, "keep" };
	["unsupported-media-type"] = { 415, "keep" };
	["misdirected-request"]    = { 421, "keep" };
	["rate-limited"]           = { 429, "keep" };
	["internal"]               = { 500, "keep" };
	["upstream-rejected"]      = { 502, "keep" };
	["unavailable"]            = { 503, "keep" };
	["timeout"]                = { 504, "keep" };
};

-- What an answer with code and problem type ptype does to the registration.
local function action_of(code, ptype)
	local row = ptype and problems[ptype];
	if row and row[1] == code then return row[2]; end
	return "keep";
end

local function handle_answer(user, push_info, body, code, response)
	local identifier = identifier_of(push_info);
	if code == 200 then
		module:log("debug", "p2http accepted the push for identifier '%s'", identifier);
		if (push_errors[identifier] or 0) > 0 then push_errors[identifier] = 0; end
		return;
	end
	if code == 0 then
		module:log("warn", "p2http unreachable for identifier '%s' (%s): push lost, registration kept", identifier, tostring(body));
		return;
	end
	local ptype = problem_type(body, response);
	local action = action_of(code, ptype);
	if action == "remove" then
		remove_registration(user, push_info, ("%d %s"):format(code, ptype));
	elseif action == "count" then
		count_error(user, push_info, ("%d %s"):format(code, ptype));
	elseif code == 401 then
		module:log("error", "p2http refused p2http_push_token (401): push lost, registration kept");
	else
		module:log("warn", "p2http answered %d%s for identifier '%s': temporary, registration kept", code,
			ptype and (" " .. ptype) or "", identifier);
	end
end

local function send_push(user, push_info, secret, important)
	local identifier = identifier_of(push_info);
	-- The app is the address's local part, normalised, as p2xmpp takes it: a
	-- push for quicksy@push.example.org is for the app "quicksy" (docs/apps.md).
	-- None is sent for the bare component address, so that the module works
	-- with a p2http from before apps too (it refuses unknown fields).
	local app = jid_split(jid_prep(push_info.jid) or push_info.jid);
	local body = json.encode({
		app = app;
		node = push_info.node;
		secret = secret;
		domain = module.host;
		important = important and true or false;
	});
	local headers = {
		["Content-Type"] = "application/json";
		["Accept"] = "application/json, application/problem+json";
	};
	if api_token then headers["Authorization"] = "Bearer " .. api_token; end

	local done = false;
	local request = http.request(push_url, { method = "POST"; body = body; headers = headers; suppress_errors = true },
		function (answer, code, response)
			if done then return; end
			done = true;
			handle_answer(user, push_info, answer, code, response);
		end);
	module:add_timer(timeout, function ()
		if done then return; end
		done = true;
		module:log("warn", "p2http did not answer within %ss for identifier '%s': push lost, registration kept", tostring(timeout), identifier);
		if request and request.cancel then request:cancel("timeout"); end
	end);
	module:log("debug", "Sent %s push for %s@%s to p2http (%s)", important and "important" or "unimportant", user, module.host, identifier);
end

-- What mod_cloud_notify does for a hibernating smacks session once it has
-- sent a push for it (process_stanza_queue): remember the time of the first
-- push and give the session back its original smacks timeout instead of the
-- extended push_max_hibernation_timeout. mod_cloud_notify skips this for a
-- push an event handler blocked, so it is done here. (Only the smacks queue
-- path pushes to a registration that a hibernating session holds, apart
-- from urgent stanzas such as call proposals.)
local function note_hibernated_push(user, push_info, important)
	if dummy_body and not important then return; end
	local user_sessions = host_sessions[user];
	if not user_sessions then return; end
	for _, session in pairs(user_sessions.sessions) do
		if session.hibernating and session.push_settings == push_info and not session.first_hibernated_push then
			session.first_hibernated_push = os.time();
			if session.hibernating_watchdog and session.original_smacks_callback and session.original_smacks_timeout then
				session.hibernating_watchdog:cancel();
				session.hibernating_watchdog = watchdog.new(session.original_smacks_timeout, session.original_smacks_callback);
			end
		end
	end
end

module:hook("cloud_notify/push", function (event)
	local push_info = event.push_info;
	if not (push_info and push_info.jid and push_jids:contains(jid_prep(push_info.jid) or push_info.jid)) then
		return; -- not ours: mod_cloud_notify publishes over XMPP
	end
	local secret = publish_secret(push_info);
	if not push_info.node or not secret then
		-- p2http cannot take it. Over XMPP, the push component answers with
		-- an error that mod_cloud_notify counts against the registration.
		module:log("debug", "Registration '%s' has no node or no secret: left to mod_cloud_notify", identifier_of(push_info));
		return;
	end
	send_push(event.username, push_info, secret, event.important);
	note_hibernated_push(event.username, push_info, event.important);
	event.reason = "delivered to p2http over HTTP by mod_p2http_push";
	return true; -- stops mod_cloud_notify's XMPP publish
end);

module:log("info", "Pushes to %s go to %s", tostring(push_jids), push_url);
