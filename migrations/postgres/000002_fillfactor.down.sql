ALTER TABLE registrations RESET (fillfactor);
